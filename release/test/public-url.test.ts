/**
 * `--public-url`: a run from a laptop (`railway run bun release/migrate.ts --public-url`) connects
 * with DATABASE_PUBLIC_URL instead of the private DATABASE_URL, and always over TLS unless the URL
 * names its own sslmode. End to end, the test server gets a self-signed certificate so that a
 * migration can record whether its own connection is encrypted.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chown, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres, { type Sql } from "postgres";
import { HELP, VERSION, parseConfig, requireTls, usageText, type Config } from "../src/shared/config.ts";
import { COMMANDS } from "../src/commands/table.ts";
import { ConfigError } from "../src/shared/errors.ts";
import { TEST_PASSWORD, startTestServer, type OwnedTestServer, type TestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, runMigrate } from "./support/run-migrate.ts";
import { tableExists } from "./support/catalog.ts";

const layout = { migrationsDir: "/repo/apps/studio/database/migrations", embeddedDataDir: "/repo/.embedded-postgres" };
const PUBLIC_URL = "postgresql://postgres:secret@shuttle.proxy.rlwy.net:41234/railway";
const PRIVATE_URL = "postgresql://postgres:secret@postgres.railway.internal:5432/railway";

function parse(argv: string[], env: Record<string, string>): Config {
  const config = parseConfig(argv, env, false, layout, COMMANDS);
  if (config === HELP || config === VERSION) throw new Error(`unexpected --${config}`);
  return config;
}

function configProblems(argv: string[], env: Record<string, string>): string {
  try {
    parse(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error("expected a configuration error");
}

describe("--public-url: configuration", () => {
  test("uses DATABASE_PUBLIC_URL with sslmode=require, and ignores DATABASE_URL", () => {
    const config = parse(["--public-url"], { DATABASE_URL: "not a url at all", DATABASE_PUBLIC_URL: PUBLIC_URL });
    expect(config.database).toEqual({ kind: "url", url: `${PUBLIC_URL}?sslmode=require` });
  });

  test("keeps an sslmode the URL names, and its other parameters", () => {
    expect(requireTls(`${PUBLIC_URL}?sslmode=verify-full`)).toBe(`${PUBLIC_URL}?sslmode=verify-full`);
    expect(requireTls(`${PUBLIC_URL}?application_name=laptop`)).toBe(`${PUBLIC_URL}?application_name=laptop&sslmode=require`);
  });

  test("a missing or malformed DATABASE_PUBLIC_URL is a usage error that names it", () => {
    const missing = configProblems(["--public-url"], { DATABASE_URL: PRIVATE_URL });
    expect(missing).toContain("DATABASE_PUBLIC_URL");
    expect(missing).toContain("railway run");
    expect(configProblems(["--public-url"], { DATABASE_PUBLIC_URL: "mysql://x@y/z" })).toContain('DATABASE_PUBLIC_URL: the scheme is "mysql"');
    expect(configProblems(["--public-url"], { DATABASE_PUBLIC_URL: "::" })).toContain("DATABASE_PUBLIC_URL: not a valid URL");
  });

  test("every command that reaches a database takes it; not together with --embedded, and not for create", () => {
    const env = { DATABASE_PUBLIC_URL: PUBLIC_URL };
    const commands = [[], ["status"], ["plan"], ["rehearse"], ["down", "--to", "5", "--yes"], ["baseline", "--to", "8"], ["resolve", "9", "--applied"]];
    for (const argv of commands) expect(parse([...argv, "--public-url"], env).database).toMatchObject({ url: `${PUBLIC_URL}?sslmode=require` });
    expect(configProblems(["--public-url", "--embedded"], env)).toContain("--embedded and --public-url");
    expect(configProblems(["create", "add_widgets", "--public-url"], env)).toContain("--public-url does not apply to the create command");
    expect(usageText(COMMANDS)).toContain("--public-url");
  });
});

describe("--public-url: a real run", () => {
  let server: OwnedTestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  /** A migration that records whether the job's own connection is encrypted. */
  const recordTls = () =>
    migrationsFolder({ "001_record_tls.sql": "create table connection_tls as select ssl from pg_stat_ssl where pid = pg_backend_pid();\n" });
  const encryptedRuns = async (sql: Sql) => (await sql`select ssl from connection_tls`).map((row) => row.ssl as boolean);
  /** DATABASE_URL as Railway sets it: a private name a laptop cannot resolve, so using it would fail at once. */
  const unreachablePrivateUrl = `postgresql://postgres:${encodeURIComponent(TEST_PASSWORD)}@postgres.railway.internal:5432/railway`;

  test("against a server without TLS it refuses to go on unencrypted: exit 3 at the first attempt, TLS named once", async () => {
    const db = await server.fresh();
    // The default connect timeout (30 s): a refusal that never clears must not be retried until it runs out.
    const result = await runMigrate(["--public-url"], { url: unreachablePrivateUrl, migrationsDir: await recordTls(), env: { DATABASE_PUBLIC_URL: db.url } });
    expect(result.code).toBe(3);
    expect(result.events.filter((event) => event.event === "connect_retry")).toEqual([]);
    expect(failure(result)).toMatchObject({ error: "database_unavailable", code: "TLS_REFUSED" });
    const { message } = failure(result);
    expect(message).toStartWith("cannot connect to 127.0.0.1 over TLS: the server does not accept TLS connections (sslmode=require)");
    expect(message.match(/cannot connect/g)).toHaveLength(1);
    expect(await tableExists(db.sql, "public.connection_tls")).toBe(false);
  });

  test("with TLS on the server, the job connects through DATABASE_PUBLIC_URL, encrypted", async () => {
    await enableTls(server);
    const db = await server.fresh();
    const result = await runMigrate(["--public-url"], {
      url: unreachablePrivateUrl,
      migrationsDir: await recordTls(),
      env: { DATABASE_PUBLIC_URL: db.url },
    });
    expect(result.code).toBe(0);
    expect(result.events.find((event) => event.event === "run_started")?.target).toBe(`postgres@127.0.0.1:${server.port}/${db.name}`);
    expect(await encryptedRuns(db.sql)).toEqual([true]);
  });

  test("without the flag the same server is reached through DATABASE_URL, and nothing asks for TLS", async () => {
    const db = await server.fresh();
    const result = await runMigrate([], { url: db.url, migrationsDir: await recordTls() });
    expect(result.code).toBe(0);
    expect(await encryptedRuns(db.sql)).toEqual([false]);
  });
});

/**
 * A self-signed certificate (CN=migrate-test, valid until 2126) and its key, made for this test and
 * used nowhere else. Kept here rather than made at run time, so the suite needs no openssl.
 */
const TEST_TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3bXtfltrsAAG6jf9
YpMurfwji9zQ7eDSiUQqDUdzySahRANCAAQH1y2rvcRYiYUGq+YTkINaGs4XZF0J
dFo1ISXaHf5CBlPIam5FKmgCJDNi9gfH5TjK92pob3iuLn7+2Rys4cQX
-----END PRIVATE KEY-----
`;
const TEST_TLS_CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBhjCCASugAwIBAgIUCalwM0e8V/dHGLq6r3mKG0ro/DMwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMbWlncmF0ZS10ZXN0MCAXDTI2MTEyMTExMzgwMloYDzIxMjYx
MDI4MTEzODAyWjAXMRUwEwYDVQQDDAxtaWdyYXRlLXRlc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQH1y2rvcRYiYUGq+YTkINaGs4XZF0JdFo1ISXaHf5CBlPI
am5FKmgCJDNi9gfH5TjK92pob3iuLn7+2Rys4cQXo1MwUTAdBgNVHQ4EFgQUI8wk
Q36lUWKYgC4dr9VAQLoaP54wHwYDVR0jBBgwFoAUI8wkQ36lUWKYgC4dr9VAQLoa
P54wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAhC44rYOZSjw6
t4wE/kCc1VhN9fVG6gZlsTnXuG/t6lcCIQD4J5ZuKdjDB1efYoy5Z70wYXWWnSYG
1RaoniJkaE3eAA==
-----END CERTIFICATE-----
`;

/**
 * Turns on TLS in the running test server: the certificate in its data folder, owned by the
 * server's user, then a configuration reload (ssl can change without a restart).
 */
async function enableTls(server: TestServer): Promise<void> {
  const { sql: admin, name } = await server.fresh();
  const [{ data_directory: dataDir }] = await admin<[{ data_directory: string }]>`show data_directory`;
  const owner = await stat(dataDir);
  for (const [file, text, mode] of [["server.crt", TEST_TLS_CERTIFICATE, 0o644], ["server.key", TEST_TLS_KEY, 0o600]] as const) {
    await writeFile(join(dataDir, file), text, { mode });
    await chown(join(dataDir, file), owner.uid, owner.gid);
  }
  await admin.unsafe("alter system set ssl = on");
  await admin.unsafe("select pg_reload_conf()");
  await waitForTls(`${server.urlFor(name)}?sslmode=require`);
}

/** The reload is a signal to the server: TLS connections work shortly after it, not at once. */
async function waitForTls(url: string): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 50; attempt++) {
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => undefined });
    try {
      await sql`select 1`;
      return;
    } catch (error) {
      lastError = error;
      await Bun.sleep(100);
    } finally {
      await sql.end({ timeout: 0 });
    }
  }
  throw new Error(`the test server did not start accepting TLS connections: ${String(lastError)}`);
}
