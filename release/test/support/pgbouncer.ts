/**
 * A real PgBouncer (Debian's package) in front of the test PostgreSQL, for the pooler tests. It
 * authenticates clients with SCRAM against a userlist holding the test password, which it also uses
 * to log in to the server, so a URL through it looks exactly like one to PostgreSQL directly.
 *
 * Missing PgBouncer fails the tests that need it, with the command that installs it: CI installs it
 * (.ci/run), and a pooler test that does not run must not look like one that passed.
 */
import { afterAll, beforeAll } from "bun:test";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { TEST_PASSWORD, choosePort, type TestServer } from "./postgres.ts";

export const PGBOUNCER_BINARY = "/usr/sbin/pgbouncer";

export type PoolMode = "transaction" | "session";

export interface PgBouncerOptions {
  readonly poolMode: PoolMode;
  /** Server connections per database and user; 1 makes every client share one server session. */
  readonly poolSize?: number;
  /**
   * Startup parameters PgBouncer drops instead of refusing the client: with the job's settings
   * here, the job gets as far as its first query, and only the cancel-key check can find the pooler.
   */
  readonly ignoreStartupParameters?: readonly string[];
}

export interface PgBouncer {
  readonly port: number;
  /** postgresql://postgres:<password>@127.0.0.1:<pgbouncer port>/<database> */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

const START_ATTEMPTS = 5;
const READY_WITHIN_MS = 10_000;
const RETRY_EVERY_MS = 25;
/** The end of PgBouncer's log kept for error messages: enough for its last complaints. */
const LOG_TAIL_CHARS = 4_000;

function userlist(): string {
  const quoted = (value: string) => `"${value.replaceAll('"', '""')}"`;
  return `${quoted("postgres")} ${quoted(TEST_PASSWORD)}\n`;
}

function ini(dir: string, serverPort: number, port: number, { poolMode, poolSize = 20, ignoreStartupParameters = [] }: PgBouncerOptions): string {
  return [
    "[databases]",
    // Any database name a client asks for: the tests create a fresh database for each test.
    `* = host=127.0.0.1 port=${serverPort}`,
    "",
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${port}`,
    // No Unix socket: nothing but TCP on 127.0.0.1 is needed, and /tmp stays clean.
    "unix_socket_dir =",
    "auth_type = scram-sha-256",
    `auth_file = ${join(dir, "userlist.txt")}`,
    `pool_mode = ${poolMode}`,
    `default_pool_size = ${poolSize}`,
    "max_client_conn = 200",
    "log_connections = 0",
    "log_disconnections = 0",
    ...(ignoreStartupParameters.length > 0 ? [`ignore_startup_parameters = ${ignoreStartupParameters.join(",")}`] : []),
    "",
  ].join("\n");
}

/** Starts PgBouncer on a free port below the ephemeral range and returns once it serves queries. */
export async function startPgBouncer(server: TestServer, options: PgBouncerOptions): Promise<PgBouncer> {
  if (!existsSync(PGBOUNCER_BINARY)) {
    throw new Error(`${PGBOUNCER_BINARY} not found: the pooler tests need Debian's PgBouncer. Install it with: apt-get install -y pgbouncer (.ci/run does)`);
  }
  // PgBouncer refuses to run as root and reads its files as the user it switches to.
  const dir = await mkdtemp(join(tmpdir(), "migrate-test-pgbouncer-"));
  await chmod(dir, 0o755);
  await writeFile(join(dir, "userlist.txt"), userlist(), { mode: 0o644 });
  let lastLog = "";
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = choosePort();
    const configFile = join(dir, `pgbouncer-${attempt}.ini`);
    await writeFile(configFile, ini(dir, server.port, port, options), { mode: 0o644 });
    const running = spawnPgBouncer(configFile);
    const urlFor = (database: string) => withPort(server.urlFor(database), port);
    const outcome = await untilServing(urlFor("postgres"), running);
    if (outcome === "serving") {
      return {
        port,
        urlFor,
        async stop() {
          await running.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    lastLog = running.log();
    await running.stop();
    // Another process took the port between choosing and binding it: try another one.
    if (!lastLog.includes("Address already in use")) break;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`PgBouncer did not start. Its log ends with:\n${lastLog}`);
}

function withPort(url: string, port: number): string {
  const through = new URL(url);
  through.port = String(port);
  return through.href;
}

interface RunningPgBouncer {
  readonly exited: Promise<number>;
  hasExited(): boolean;
  log(): string;
  stop(): Promise<void>;
}

function spawnPgBouncer(configFile: string): RunningPgBouncer {
  const asUnprivileged = process.getuid?.() === 0 ? ["-u", "nobody"] : [];
  const child = Bun.spawn([PGBOUNCER_BINARY, ...asUnprivileged, configFile], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  let log = "";
  // Drained all the time, so a full pipe never blocks PgBouncer; only the end is kept.
  const draining = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) log = (log + decoder.decode(chunk, { stream: true })).slice(-LOG_TAIL_CHARS);
  })();
  let exited = false;
  const exitCode = child.exited.then((code) => ((exited = true), code));
  return {
    exited: exitCode,
    hasExited: () => exited,
    log: () => log,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      await exitCode;
      await draining;
    },
  };
}

/**
 * Tries a query through PgBouncer until one succeeds, PgBouncer exits, or the deadline passes.
 * Only "connection refused" (not listening yet) is worth another attempt; anything else is a
 * configuration mistake and is thrown at once.
 */
async function untilServing(url: string, running: RunningPgBouncer): Promise<"serving" | "exited"> {
  const deadline = Date.now() + READY_WITHIN_MS;
  for (;;) {
    if (running.hasExited()) return "exited";
    const client = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => undefined });
    try {
      await client`select 1`;
      return "serving";
    } catch (error) {
      if ((error as { code?: string }).code !== "ECONNREFUSED") throw new Error(`PgBouncer is up but a query through it failed: ${String(error)}\n${running.log()}`);
      if (Date.now() > deadline) throw new Error(`PgBouncer did not accept connections within ${READY_WITHIN_MS} ms:\n${running.log()}`);
    } finally {
      await client.end({ timeout: 1 });
    }
    // The pause between attempts also ends the moment PgBouncer exits (a port already taken).
    await Promise.race([running.exited, Bun.sleep(RETRY_EVERY_MS)]);
  }
}

/**
 * The test file's PgBouncer, started before its tests and stopped after them. Call it after
 * useTestServer, with that server's handle; use the result inside tests and hooks.
 */
export function usePgBouncer(server: TestServer, options: PgBouncerOptions): PgBouncer {
  let started: PgBouncer | undefined;
  beforeAll(async () => {
    started = await startPgBouncer(server, options);
  });
  afterAll(async () => {
    await started?.stop();
  });
  const current = () => {
    if (!started) throw new Error("PgBouncer starts in beforeAll: use it inside a test or a hook");
    return started;
  };
  return {
    get port() {
      return current().port;
    },
    urlFor: (database) => current().urlFor(database),
    stop: () => current().stop(),
  };
}
