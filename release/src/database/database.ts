/**
 * The PostgreSQL client: two dedicated connections (one holds the migration lock, one runs the
 * migrations), an application name that tells other sessions who we are, and connecting with
 * retry and backoff inside a time limit.
 */
import postgres, { type ISql, type Sql } from "postgres";
import { DatabaseUnavailableError, SessionLostError, UNKNOWN_CODE } from "../shared/errors.ts";
import { refuseProtocolPooler, refusedStartupParameter } from "./pooler.ts";
import { formatDuration, postgresDuration } from "../shared/duration.ts";
import { pause } from "../shared/cancellation.ts";
import type { Logger } from "../shared/log.ts";
import type { MigrationPolicy, Runner, TableName } from "../shared/config.ts";
import { inlined } from "./inline-values.ts";

/** A session or a transaction: anything that runs queries. */
export type Queryable = ISql<{}>;

/** What restoreInTransaction sends: one message, as it is sent once per migration. */
export const RESTORE_IN_TRANSACTION = "reset all; set session authorization default";

/** A whole session (it can begin a transaction), rather than a transaction already open on one. */
export function isSession(sql: Queryable): sql is Sql {
  return "begin" in sql;
}

export const APPLICATION_NAME = "studio-migrate";

export interface ConnectOptions {
  readonly url: string;
  readonly connectTimeoutMs: number;
  readonly runner: Runner;
  readonly logger: Logger;
  /** What a server NOTICE (RAISE NOTICE in a migration) becomes in the log. */
  readonly onNotice: (notice: postgres.Notice) => void;
  /** Session settings (lock_timeout, …), sent in the startup packet: the session's own defaults. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Aborted when the run is cancelled: stops retrying at once. */
  readonly signal?: AbortSignal;
  /** What the session is for, as a lost-session error names it: "migration", "lock". */
  readonly role?: string;
}

/**
 * Settings every session of the job starts with. PostgreSQL would end an idle session after
 * idle_session_timeout when a database or role sets one, and the job's sessions are idle by
 * design: the migration session while the run waits for the lock, the lock's session while a
 * migration runs.
 */
export const JOB_SESSION_SETTINGS: Readonly<Record<string, string>> = { idle_session_timeout: "0" };

/**
 * The settings the job's sessions start with, from the run's policy (a file may override the first
 * two for itself). The lock's session gets them too: it runs the job's own queries (the tracking
 * state, the schema checks, the run history) while another session migrates, and a lock held on
 * the job's tables or a slow catalog must not stall a run there either.
 */
export function migrationSessionSettings(policy: MigrationPolicy): Readonly<Record<"lock_timeout" | "statement_timeout" | "idle_in_transaction_session_timeout", string>> {
  return {
    lock_timeout: postgresDuration(policy.lockTimeoutMs),
    statement_timeout: postgresDuration(policy.statementTimeoutMs),
    idle_in_transaction_session_timeout: postgresDuration(policy.idleInTransactionTimeoutMs),
  };
}

/**
 * One dedicated connection the job set up: its backend pid is known and its settings are the
 * job's. The settings travel in the startup packet, so they are the session's defaults: RESET and
 * DISCARD ALL return to them, and no query is spent setting them.
 *
 * postgres.js would silently open a fresh connection when this one closes (terminated,
 * idle_session_timeout, a network reset) and run the next query there, under another pid. A
 * Session never allows that: once its connection has closed, every new query through `sql` throws
 * SessionLostError, so nothing runs on a session the job did not set up and cancellation never
 * aims at a dead pid.
 */
export class Session {
  readonly #client: Sql;
  readonly #guarded: Sql;
  readonly #role: string;
  #pid = 0;
  #established = false;
  #closed = false;

  constructor(client: (onclose: () => void) => Sql, role: string) {
    this.#client = client(() => {
      if (this.#established) this.#closed = true;
    });
    this.#role = role;
    this.#guarded = guard(this.#client, () => this.#assertOpen());
  }

  /** Queries through the session; throws SessionLostError once its connection has closed. */
  get sql(): Sql {
    return this.#guarded;
  }

  /** The server process id of this connection, as `pg_stat_activity` and `pg_locks` show it. */
  get pid(): number {
    return this.#pid;
  }

  /** True once the connection has closed: the session can run nothing any more. */
  get lost(): boolean {
    return this.#closed;
  }

  /**
   * Connects and learns the backend pid (one round trip after authentication), refusing a
   * connection pooler before anything else runs. Throws what postgres.js threw; the caller decides
   * whether to retry.
   */
  async establish(url: string): Promise<void> {
    // `state` is the backend the connection announced at startup (BackendKeyData); the row is the session that answered.
    const { 0: row, state: announced } = await this.#client<{ pid: number }[]>`select pg_backend_pid() as pid`;
    refuseProtocolPooler(url, announced.pid, row!.pid);
    this.#pid = row!.pid;
    this.#established = true;
  }

  /**
   * Puts the session back to the state it was established in, so that the next migration file
   * starts from the same place whatever the last one did: DISCARD ALL ends every SET (back to the
   * job's settings from the startup packet), SET ROLE, SET SESSION AUTHORIZATION, temporary table,
   * prepared statement and session advisory lock. It refuses to run inside a transaction block, so
   * a session left inside a transaction fails here with SQLSTATE 25001.
   */
  async reset(): Promise<void> {
    await this.sql`discard all`;
  }

  /**
   * Inside a migration's transaction, after the file's own SQL and before the job writes its
   * record there: the settings and role the file may have changed go back to the session's own
   * (RESET ALL returns to the startup packet's values), so that nothing a file sets changes how the
   * job's rows are written: a statement_timeout of 1 ms, a role without rights on the tracking
   * table, a search_path that shadows pg_locks. The rest goes at the reset after COMMIT.
   */
  async restoreInTransaction(tx: Queryable): Promise<void> {
    await tx.unsafe(RESTORE_IN_TRANSACTION).simple();
  }

  async close(): Promise<void> {
    await this.#client.end({ timeout: 1 }).catch(() => undefined);
  }

  /** Why a query that failed on this session failed, once the session is known to be lost. */
  lostError(cause?: unknown): SessionLostError {
    return new SessionLostError(this.#role, this.#pid, cause === undefined ? undefined : { cause });
  }

  #assertOpen(): void {
    if (this.#closed) throw this.lostError();
  }
}

/** The members of a postgres.js client that send queries; `end` and the helpers stay as they are. */
const QUERYING_MEMBERS = new Set<PropertyKey>(["unsafe", "begin", "reserve", "file"]);

/** The same client, with `check` run before every query it would send. */
function guard(client: Sql, check: () => void): Sql {
  return new Proxy(client, {
    apply(target, thisArg, args) {
      check();
      return Reflect.apply(target, thisArg, args);
    },
    get(target, property, receiver) {
      const member = Reflect.get(target, property, receiver);
      if (!QUERYING_MEMBERS.has(property) || typeof member !== "function") return member;
      return (...args: unknown[]) => {
        check();
        return Reflect.apply(member, target, args);
      };
    },
  });
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
  const session = new Session(
    (onclose) =>
      postgres(options.url, {
        max: 1,
        prepare: false,
        // The job sends no array or custom-type parameters, so it skips the type catalog query on connect.
        fetch_types: false,
        idle_timeout: 0,
        connect_timeout: Math.max(1, Math.ceil(Math.min(options.connectTimeoutMs, MAX_ATTEMPT_MS) / 1000)),
        connection: { ...JOB_SESSION_SETTINGS, ...options.settings, application_name: applicationName(options.runner) },
        onnotice: options.onNotice,
        onclose,
      }),
    options.role ?? "database",
  );
  let backoff = FIRST_BACKOFF_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      await session.establish(options.url);
      return session;
    } catch (error) {
      const pooler = refusedStartupParameter(options.url, error);
      if (pooler) {
        await session.close();
        throw pooler;
      }
      const tls = tlsRefusal(options.url, error, host);
      if (tls) {
        await session.close();
        throw tls;
      }
      const code = errorCode(error);
      const unresolvablePrivateHost = isPrivateRailwayHost(host) && (code === "ENOTFOUND" || code === "EAI_AGAIN");
      const retry = RETRYABLE.has(code) && !(unresolvablePrivateHost && !options.runner.deploymentId);
      const remaining = deadline - Date.now();
      if (!retry || remaining <= 0 || options.signal?.aborted) {
        await session.close();
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

/** sslmode values that make the connection fail rather than go on unencrypted. */
const TLS_REQUIRED = new Set(["require", "verify-ca", "verify-full"]);
/** What postgres.js (through Node's TLS) says when the server will not do TLS: it answered the SSL request with no, and the handshake met a closed socket. */
const TLS_NOT_ESTABLISHED = "before secure TLS connection was established";

/**
 * A server that refuses TLS when the URL requires it: that never clears up, so it fails at once
 * instead of being retried until MIGRATE_CONNECT_TIMEOUT.
 */
function tlsRefusal(url: string, error: unknown, host: string): DatabaseUnavailableError | undefined {
  const sslmode = new URL(url).searchParams.get("sslmode") ?? "";
  if (!TLS_REQUIRED.has(sslmode) || !(error instanceof Error) || !error.message.includes(TLS_NOT_ESTABLISHED)) return undefined;
  return new DatabaseUnavailableError(
    `cannot connect to ${host} over TLS: the server does not accept TLS connections (sslmode=${sslmode}), and the job does not go on unencrypted. ` +
      "DATABASE_PUBLIC_URL should be the address of Railway's public TCP proxy, which accepts TLS; for a server of your own without TLS, put sslmode=disable in the URL",
    "TLS_REFUSED",
    { cause: error },
  );
}

export function isPrivateRailwayHost(host: string): boolean {
  return host.endsWith(".railway.internal");
}

/** The SQLSTATE of a server error, or the Node/postgres.js code of a network error. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : UNKNOWN_CODE;
}

function describeError(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return message.includes(code) || code === UNKNOWN_CODE ? message : `${message} (${code})`;
}

/** Closes a session without waiting on queries that will never finish. */
export async function closeSession(session: Session | undefined): Promise<void> {
  await session?.close();
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
  /** The question in flight, so callers asking through the same session at once share one query. */
  #asking: { readonly sql: Queryable; readonly answer: Promise<boolean> } | undefined;

  constructor(readonly name: TableName) {}

  get qualifiedName(): string {
    return `${this.name.schema}.${this.name.table}`;
  }

  async exists(sql: Queryable): Promise<boolean> {
    if (this.#seen) return true;
    if (this.#asking?.sql !== sql) {
      const answer = inlined(sql)<{ exists: boolean }[]>`select to_regclass(${this.qualifiedName}) is not null as exists`.then(([row]) => this.noteExists(row!.exists));
      this.#asking = { sql, answer };
      void answer.finally(() => {
        if (this.#asking?.answer === answer) this.#asking = undefined;
      }).catch(() => undefined);
    }
    return this.#asking.answer;
  }

  /** Told the answer by a query that asked anyway; returns it. */
  noteExists(exists: boolean): boolean {
    this.#seen ||= exists;
    return exists;
  }
}
