/**
 * The migration lock: a session-level advisory lock on a connection that does nothing else, held
 * for the whole run, so concurrent deploys never apply a migration twice.
 *
 * The key is the bigint whose bytes are the ASCII text "STUDIOMG": 6004517954967784775. In
 * `pg_locks` it shows as locktype 'advisory', classid 1398035780, objid 1229933895, objsubid 1.
 */
import { DatabaseUnavailableError, RunAbortedError } from "../shared/errors.ts";
import { errorCode, type Session, type Queryable } from "./database.ts";
import { formatDuration } from "../shared/duration.ts";
import { throwIfCancelled } from "../shared/cancellation.ts";
import { CONNECT_DIRECTLY } from "./pooler.ts";
import type { Logger } from "../shared/log.ts";
import { inlined } from "./inline-values.ts";
import { failUnless, type Pipeline } from "./pipeline.ts";

export const MIGRATION_LOCK_KEY = "6004517954967784775";
const LOCK_CLASSID = 1398035780;
const LOCK_OBJID = 1229933895;
/** The migration lock's rows in pg_locks (as `l`), granted or awaited. */
const LOCK_ROWS = `l.locktype = 'advisory' and l.classid = ${LOCK_CLASSID} and l.objid = ${LOCK_OBJID} and l.objsubid = 1`;

/** SQL that is true while backend `pid` (an SQL expression) holds the migration lock. */
function heldByBackend(pid: string): string {
  return `exists (select 1 from pg_locks l where ${LOCK_ROWS} and l.pid = ${pid} and l.granted)`;
}
/** How often a waiting run logs who holds the lock. */
const WAIT_REPORT_INTERVAL_MS = 10_000;
/**
 * How long one wait in PostgreSQL's lock queue lasts before the run looks at its cancellation
 * signal again. A cancel sent from the other session can reach the server just before the wait
 * starts and be ignored there; the wait then ends by itself this soon after.
 */
const WAIT_SLICE_MS = 500;
const LOCK_NOT_AVAILABLE = "55P03";

export interface LockHolder {
  readonly pid: number;
  readonly applicationName: string | null;
  readonly connectedForMs: number | null;
}

/** The held lock, as the runner sees it. */
export interface HeldLock {
  /** Fails the run unless the lock's session still holds the lock; checked before each commit. */
  assertHeld(sql: Queryable): Promise<void>;
  /** The same check sent in `pipeline`, failing its statement (and so the COMMIT sent after it) when the lock is gone. */
  sendHeldCheck(pipeline: Pipeline, sql: Queryable): void;
}

export interface LockOptions {
  readonly waitMs: number;
  readonly logger: Logger;
  /** Aborted when the run is cancelled: the wait ends at once. */
  readonly signal: AbortSignal;
}

/** Runs `body` while holding the migration lock on `session`; releases it whatever happens. */
/** What the lock needs of the session that holds it. */
export type LockSession = Pick<Session, "sql" | "pid" | "lost">;

export async function withMigrationLock<T>(session: LockSession, options: LockOptions, body: (lock: HeldLock) => Promise<T>): Promise<T> {
  await acquire(session, options);
  try {
    await assertOwnBackendHolds(session);
    return await body({ assertHeld: (sql) => assertHeldBy(sql, session), sendHeldCheck: (pipeline, sql) => sendHeldCheck(pipeline, sql, session) });
  } finally {
    // A lost session took its lock with it; the server released it when the connection closed.
    if (!session.lost) await inlined(session.sql)`select pg_advisory_unlock(${MIGRATION_LOCK_KEY}::bigint)`.catch(() => undefined);
  }
}

async function acquire(session: LockSession, { waitMs, logger, signal }: LockOptions): Promise<void> {
  const started = Date.now();
  if (await takeLock(session.sql, "try")) {
    logger.info("lock_acquired", "migration lock acquired", { lock_key: MIGRATION_LOCK_KEY, waited_ms: 0 });
    return;
  }
  let holder: LockHolder | undefined;
  let reportedAt: number | undefined;
  for (;;) {
    throwIfCancelled(signal, "the migration lock was acquired");
    const remaining = started + waitMs - Date.now();
    if (remaining <= 0) {
      throw new DatabaseUnavailableError(
        `the migration lock was not acquired within ${formatDuration(waitMs)} (MIGRATE_LOCK_WAIT): it is ${describeHolder(holder)}. ` +
          `If that run is stuck, stop it, or end its session with: select pg_terminate_backend(${holder?.pid ?? "<pid>"});`,
        LOCK_NOT_AVAILABLE,
      );
    }
    if (reportedAt === undefined || Date.now() - reportedAt >= WAIT_REPORT_INTERVAL_MS) {
      reportedAt = Date.now();
      holder = (await findHolder(session.sql)) ?? holder;
      logger.info("lock_waiting", `waiting for the migration lock: it is ${describeHolder(holder)} (${formatDuration(remaining)} left to wait)`, {
        holder_pid: holder?.pid,
        holder_application: holder?.applicationName,
        holder_connected_ms: holder?.connectedForMs,
      });
    }
    if (await waitForLock(session.sql, Math.min(remaining, WAIT_SLICE_MS))) {
      const waited = Date.now() - started;
      logger.info("lock_acquired", `migration lock acquired after waiting ${formatDuration(waited)}`, { lock_key: MIGRATION_LOCK_KEY, waited_ms: waited });
      return;
    }
  }
}

/**
 * Blocks in PostgreSQL's own lock queue for at most `ms`, so the lock is taken the moment it is
 * free. The wait is bounded by lock_timeout alone: the session's statement_timeout (the run's
 * MIGRATE_STATEMENT_TIMEOUT, which may be shorter than a slice) would end it as a failure.
 */
async function waitForLock(sql: Queryable, ms: number): Promise<boolean> {
  await inlined(sql)`select set_config('lock_timeout', ${`${Math.max(1, Math.round(ms))}ms`}, false), set_config('statement_timeout', '0', false)`;
  try {
    return await takeLock(sql, "wait");
  } catch (error) {
    if (errorCode(error) === LOCK_NOT_AVAILABLE) return false;
    throw error;
  } finally {
    // Back to the session's own timeouts, which bound its reads and its writes to the run history.
    await sql.unsafe("reset lock_timeout; reset statement_timeout").simple();
  }
}

/**
 * Takes the lock ("try": only if it is free; "wait": in the lock queue, until lock_timeout) and
 * says whether it was taken. An advisory lock is re-entrant: asked again on a server session that
 * holds it, PostgreSQL grants it again at once, so this session's own hold is read first, in the
 * same statement (CASE evaluates its branches in order: pg_locks before the lock is asked for).
 *
 * On the first ask, a session this run just opened can hold it already only if another client
 * shares the server session (a pooler): that is refused, with nothing taken, and the other
 * holder's lock stays as it was. On a later slice of a wait, a hold is this run's own: a wait
 * that ends by lock_timeout the moment the lock is granted can report the timeout and keep the
 * grant, so the next slice finds the lock already its own.
 */
async function takeLock(sql: Queryable, how: "try" | "wait"): Promise<boolean> {
  const take =
    how === "try"
      ? inlined(sql)`case when pg_try_advisory_lock(${MIGRATION_LOCK_KEY}::bigint) then 'acquired' else 'busy' end`
      : inlined(sql)`(select 'acquired' from pg_advisory_lock(${MIGRATION_LOCK_KEY}::bigint))`;
  const [row] = await inlined(sql)<{ pid: number; outcome: "acquired" | "busy" | "held_already" }[]>`
    select pg_backend_pid() as pid, case when ${sql.unsafe(heldByBackend("pg_backend_pid()"))} then 'held_already' else ${take} end as outcome`;
  if (row!.outcome === "held_already" && how === "try") throw heldAlready(row!.pid);
  return row!.outcome !== "busy";
}

function heldAlready(pid: number): DatabaseUnavailableError {
  return new DatabaseUnavailableError(
    `this connection's server session (pid ${pid}) already held the migration lock before this run asked for it: ` +
      `another client shares that server session, as through a connection pooler, so the lock cannot keep runs apart. ` +
      `Nothing was taken or released. ${CONNECT_DIRECTLY}`,
    "LOCK_HELD_BY_SHARED_SESSION",
  );
}

async function findHolder(sql: Queryable): Promise<LockHolder | undefined> {
  const [row] = await inlined(sql)<{ pid: number; application_name: string | null; connected_ms: number | null }[]>`
    select l.pid, a.application_name, (extract(epoch from now() - a.backend_start) * 1000)::float8 as connected_ms
    from pg_locks l left join pg_stat_activity a on a.pid = l.pid
    where ${sql.unsafe(LOCK_ROWS)} and l.granted`;
  return row && { pid: row.pid, applicationName: row.application_name, connectedForMs: row.connected_ms };
}

function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return "held by a session that has since released it";
  const app = holder.applicationName ? ` "${holder.applicationName}"` : "";
  const age = holder.connectedForMs === null ? "" : `, connected ${formatDuration(holder.connectedForMs)} ago`;
  return `held by pid ${holder.pid}${app}${age}`;
}

/**
 * Behind a pooler in transaction mode (PgBouncer, or Supavisor on port 6543) each query may run on
 * a different server session: the lock was granted to one of them and this connection cannot keep
 * it. Asking pg_locks from this very connection proves the lock and the connection share a backend.
 */
export async function assertOwnBackendHolds(session: Pick<Session, "sql" | "pid">): Promise<void> {
  const { sql } = session;
  const [row] = await sql<{ pid: number; held: boolean }[]>`select pg_backend_pid() as pid, ${sql.unsafe(heldByBackend("pg_backend_pid()"))} as held`;
  if (row!.held && row!.pid === session.pid) return;
  throw new DatabaseUnavailableError(
    `the migration lock was granted, but not to this connection's server session (pid ${session.pid} connected, pid ${row!.pid} answered): ` +
      "the connection goes through a pooler in transaction mode, which hands each query to another session, so a session lock cannot be held. " +
      CONNECT_DIRECTLY,
    "LOCK_NOT_OWNED",
  );
}

async function assertHeldBy(sql: Queryable, session: LockSession): Promise<void> {
  const { pid } = session;
  if (session.lost) throw lockLost(pid);
  const [row] = await sql<{ held: boolean }[]>`select ${sql.unsafe(heldByBackend(String(pid)))} as held`;
  if (!row!.held) throw lockLost(pid);
}

function sendHeldCheck(pipeline: Pipeline, sql: Queryable, session: LockSession): void {
  const { pid } = session;
  if (session.lost) throw lockLost(pid);
  pipeline.send(sql`select ${sql.unsafe(failUnless(heldByBackend(String(pid)), `the migration lock is not held by pid ${pid}`))} as held`, () => lockLost(pid));
}

function lockLost(pid: number): RunAbortedError {
  return new RunAbortedError(`the migration lock was lost (its connection, pid ${pid}, closed); stopped without committing the current migration. Run the job again.`);
}
