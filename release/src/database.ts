/**
 * The PostgreSQL client: two dedicated connections (one holds the migration lock, one runs the
 * migrations), an application name that tells other sessions who we are, and connecting with
 * retry and backoff inside a time limit.
 */
import postgres, { type ISql, type Sql } from "postgres";
import { DatabaseUnavailableError } from "./errors.ts";
import { refuseProtocolPooler } from "./pooler.ts";
import { formatDuration } from "./duration.ts";
import { pause } from "./cancellation.ts";
import type { Logger } from "./log.ts";
import type { Runner, TableName } from "./config.ts";

/** A session or a transaction: anything that runs queries. */
export type Queryable = ISql<{}>;

export const APPLICATION_NAME = "studio-migrate";

export interface ConnectOptions {
  readonly url: string;
  readonly connectTimeoutMs: number;
  readonly runner: Runner;
  readonly logger: Logger;
  /** What a server NOTICE (RAISE NOTICE in a migration) becomes in the log. */
  readonly onNotice: (notice: postgres.Notice) => void;
  /** Session settings (lock_timeout, …), set once the connection is known to reach PostgreSQL itself. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Aborted when the run is cancelled: stops retrying at once. */
  readonly signal?: AbortSignal;
}

export interface Session {
  readonly sql: Sql;
  /** The server process id of this connection, as `pg_stat_activity` and `pg_locks` show it. */
  readonly pid: number;
}

/** postgres.js error codes for a server that is not reachable yet, and SQLSTATEs worth a retry. */
const RETRYABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ENOTFOUND",
  "CONNECT_TIMEOUT",
  "57P03", // cannot_connect_now: the database system is starting up
  "53300", // too_many_connections
]);
const FIRST_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5_000;
const MAX_ATTEMPT_MS = 10_000;

export function applicationName(runner: Runner): string {
  return runner.deploymentId ? `${APPLICATION_NAME} deploy ${runner.deploymentId}`.slice(0, 63) : APPLICATION_NAME;
}

/** Opens one dedicated connection, retrying while the server is unreachable, up to the limit. */
export async function openSession(options: ConnectOptions): Promise<Session> {
  const deadline = Date.now() + options.connectTimeoutMs;
  const host = new URL(options.url).hostname;
  const sql = postgres(options.url, {
    max: 1,
    prepare: false,
    // The job sends no array or custom-type parameters, so it skips the type catalog query on connect.
    fetch_types: false,
    idle_timeout: 0,
    connect_timeout: Math.max(1, Math.ceil(Math.min(options.connectTimeoutMs, MAX_ATTEMPT_MS) / 1000)),
    connection: { application_name: applicationName(options.runner) },
    onnotice: options.onNotice,
  });
  let backoff = FIRST_BACKOFF_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      // `state` is the backend the connection announced at startup (BackendKeyData); the row is the one that answered.
      const { 0: row, state: announced } = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
      // Checked before the settings: through a pooler they would stay on a server session its other clients get.
      refuseProtocolPooler(options.url, announced.pid, row!.pid);
      // JSON rather than arrays: postgres.js cannot send an array before its first query has loaded the types.
      if (options.settings) await sql`select count(set_config(key, value, false)) from json_each_text(${JSON.stringify(options.settings)}::text::json)`;
      return { sql, pid: row!.pid };
    } catch (error) {
      const code = errorCode(error);
      const unresolvablePrivateHost = isPrivateRailwayHost(host) && (code === "ENOTFOUND" || code === "EAI_AGAIN");
      const retry = RETRYABLE.has(code) && !(unresolvablePrivateHost && !options.runner.deploymentId);
      const remaining = deadline - Date.now();
      if (!retry || remaining <= 0 || options.signal?.aborted) {
        await sql.end({ timeout: 0 });
        throw unavailable(error, code, host, unresolvablePrivateHost, attempt, options.connectTimeoutMs);
      }
      const wait = Math.min(backoff, remaining);
      options.logger.warn("connect_retry", `cannot connect to ${host} yet (${describeError(error)}); attempt ${attempt}, retrying in ${formatDuration(wait)}`, {
        code,
        attempt,
      });
      await (options.signal ? pause(wait, options.signal) : Bun.sleep(wait));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}

function unavailable(error: unknown, code: string, host: string, privateHost: boolean, attempts: number, limitMs: number): DatabaseUnavailableError {
  if (error instanceof DatabaseUnavailableError) return error; // connected, then refused (a pooler): it says why itself
  if (privateHost) {
    return new DatabaseUnavailableError(
      `cannot resolve ${host}: *.railway.internal names exist only inside Railway's private network. ` +
        `From a laptop, connect with DATABASE_PUBLIC_URL over TLS instead: railway run bun release/migrate.ts --public-url`,
      code,
      { cause: error },
    );
  }
  const tried = attempts > 1 ? ` after ${attempts} attempts within ${formatDuration(limitMs)} (MIGRATE_CONNECT_TIMEOUT)` : "";
  return new DatabaseUnavailableError(`cannot connect to ${host}${tried}: ${describeError(error)}`, code, { cause: error });
}

export function isPrivateRailwayHost(host: string): boolean {
  return host.endsWith(".railway.internal");
}

/** The SQLSTATE of a server error, or the Node/postgres.js code of a network error. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : "UNKNOWN";
}

function describeError(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return message.includes(code) || code === "UNKNOWN" ? message : `${message} (${code})`;
}

/** Closes a session without waiting on queries that will never finish. */
export async function closeSession(session: Session | undefined): Promise<void> {
  await session?.sql.end({ timeout: 1 }).catch(() => undefined);
}

/** `schema.table` as a safely quoted SQL fragment. */
export function qualifiedTable(sql: Queryable, table: TableName) {
  return sql`${sql(table.schema)}.${sql(table.table)}`;
}

/**
 * Whether one of the job's own tables exists, asked of the database only until it is seen: nothing
 * drops those tables during a run, so every later check in the run costs no round trip.
 */
export class JobTable {
  #seen = false;

  constructor(readonly name: TableName) {}

  get qualifiedName(): string {
    return `${this.name.schema}.${this.name.table}`;
  }

  async exists(sql: Queryable): Promise<boolean> {
    if (this.#seen) return true;
    const [row] = await sql<{ exists: boolean }[]>`select to_regclass(${this.qualifiedName}) is not null as exists`;
    return this.noteExists(row!.exists);
  }

  /** Told the answer by a query that asked anyway; returns it. */
  noteExists(exists: boolean): boolean {
    this.#seen ||= exists;
    return exists;
  }

}
