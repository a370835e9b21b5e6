/**
 * Watches one backend for waits on heavyweight locks (tables, rows, other transactions), from a
 * second session, while that backend runs a migration: how long each wait lasted and which
 * sessions blocked it. It only observes: polling never changes what the watched backend does.
 *
 * Times come from the server (`pg_locks.waitstart` and `clock_timestamp()`), so they are on one
 * clock. A wait's start is exact; its end is known to within one poll interval.
 */
import { RunAbortedError } from "../shared/errors.ts";
import type { Queryable } from "./database.ts";

/** Often enough to catch a wait a person would care about; cheap enough to run for minutes. */
export const LOCK_WAIT_POLL_MS = 50;

export interface Blocker {
  readonly pid: number;
  /** Null when the blocking session has ended since, or sets no application name. */
  readonly applicationName: string | null;
  /** pg_stat_activity.state: `idle in transaction` is the usual culprit. */
  readonly state: string | null;
  /** When the blocker's current (or last) query started. */
  readonly queryStart: Date | null;
}

/** What the watched backend is waiting for, as `pg_locks` describes it. */
export interface AwaitedLock {
  /** `relation`, `tuple`, `transactionid`, `advisory`, …: pg_locks.locktype. */
  readonly type: string;
  /** e.g. `AccessShareLock`. */
  readonly mode: string;
  /** The table or index, for relation and tuple locks. */
  readonly relation: string | null;
}

export interface LockWait {
  readonly lock: AwaitedLock;
  readonly waitedMs: number;
  /** Every session seen blocking the wait while it lasted, by pid. */
  readonly blocking: readonly Blocker[];
}

export interface WatchedBackend {
  /** A session free for read-only queries; never the watched one. */
  readonly sql: Queryable;
  readonly workPid: number;
}

export interface LockWaitWatcher {
  /** Takes one last look, stops polling and returns every wait seen, in order. */
  stop(): Promise<LockWait[]>;
}

export interface WatchOptions {
  /** Told the first time a wait is seen, so a long wait shows in the log while it lasts. */
  readonly onWaitStarted?: (lock: AwaitedLock, blocking: readonly Blocker[]) => void;
  /**
   * Look only once the work has run this long: work that finishes sooner costs no query at all,
   * while a wait long enough to matter (a lock_timeout of seconds) is still seen.
   */
  readonly startAfterMs?: number;
}

interface Sample {
  readonly observedAt: Date;
  /** Absent when the backend waits for no lock. */
  readonly wait: { readonly lock: AwaitedLock; readonly since: Date | null; readonly blocking: readonly Blocker[] } | undefined;
}

interface OpenWait {
  readonly lock: AwaitedLock;
  startedAt: Date;
  /** pg_locks.waitstart, which tells one wait from the next; null for an instant after a wait begins. */
  since: Date | null;
  readonly blocking: Map<number, Blocker>;
}

/** Starts polling `backend` at once; call `stop` when the work it watches has finished. */
export function watchLockWaits(backend: WatchedBackend, options: WatchOptions = {}): LockWaitWatcher {
  const waits: LockWait[] = [];
  let open: OpenWait | undefined;
  let stopping = false;
  let wakeEarly: () => void = () => undefined;

  const record = (sample: Sample) => {
    const { wait, observedAt } = sample;
    if (open && (!wait || isNewWait(open, wait.since))) {
      waits.push(closeWait(open, observedAt));
      open = undefined;
    }
    if (!wait) return;
    if (!open) {
      open = { lock: wait.lock, startedAt: wait.since ?? observedAt, since: wait.since, blocking: new Map() };
      options.onWaitStarted?.(wait.lock, wait.blocking);
    }
    if (wait.since && !open.since) {
      open.since = wait.since;
      open.startedAt = wait.since;
    }
    for (const blocker of wait.blocking) open.blocking.set(blocker.pid, blocker);
  };

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeEarly = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const poll = async () => {
    if (options.startAfterMs) await pause(options.startAfterMs);
    if (stopping) return;
    while (!stopping) {
      record(await sample(backend));
      await pause(LOCK_WAIT_POLL_MS);
    }
    // The watched work has finished: this look closes any wait still open.
    record(await sample(backend));
  };
  // Settled here, so a failed poll is never an unhandled rejection; stop() reports it.
  const polling = poll().then(
    () => undefined,
    (error: unknown) => error,
  );

  return {
    async stop() {
      stopping = true;
      wakeEarly();
      const failure = await polling;
      if (failure !== undefined) {
        const message = failure instanceof Error ? failure.message : String(failure);
        throw new RunAbortedError(`lost the session that holds the migration lock while watching for lock waits: ${message}`, { cause: failure });
      }
      return waits;
    },
  };
}

function isNewWait(open: OpenWait, since: Date | null): boolean {
  return since !== null && open.since !== null && since.getTime() !== open.since.getTime();
}

function closeWait(open: OpenWait, endedAt: Date): LockWait {
  return {
    lock: open.lock,
    waitedMs: Math.max(0, endedAt.getTime() - open.startedAt.getTime()),
    blocking: [...open.blocking.values()].sort((a, b) => a.pid - b.pid),
  };
}

type SampleRow = {
  observed_at: Date;
  locktype: string | null;
  mode: string | null;
  relation: string | null;
  waitstart: Date | null;
  blocking: { pid: number; application_name: string | null; state: string | null; query_start: string | null }[] | null;
};

/**
 * One look at the backend. pg_blocking_pids takes the lock manager's locks briefly, so it runs
 * only while the backend actually waits.
 */
async function sample({ sql, workPid }: WatchedBackend): Promise<Sample> {
  const [row] = await sql<SampleRow[]>`
    select clock_timestamp() as observed_at, w.locktype, w.mode, w.relation, w.waitstart, w.blocking
    from (select 1) as one
    left join lateral (
      select l.locktype, l.mode, l.relation::regclass::text as relation, l.waitstart,
        (select json_agg(json_build_object('pid', b.pid, 'application_name', nullif(a.application_name, ''),
                                           'state', a.state, 'query_start', a.query_start) order by b.pid)
         from unnest(pg_blocking_pids(l.pid)) as b(pid) left join pg_stat_activity a on a.pid = b.pid) as blocking
      from pg_locks l
      where l.pid = ${workPid} and not l.granted
      limit 1
    ) as w on true`;
  const { observed_at: observedAt, locktype, mode, relation, waitstart, blocking } = row!;
  if (locktype === null || mode === null) return { observedAt, wait: undefined };
  return {
    observedAt,
    wait: {
      lock: { type: locktype, mode, relation },
      since: waitstart,
      blocking: (blocking ?? []).map((blocker) => ({
        pid: blocker.pid,
        applicationName: blocker.application_name,
        state: blocker.state,
        queryStart: blocker.query_start === null ? null : new Date(blocker.query_start),
      })),
    },
  };
}

/** "blocked by pid 123 "psql" (idle in transaction, query started 12:00:01Z)", for logs and errors. */
export function describeBlockers(blocking: readonly Blocker[]): string {
  if (blocking.length === 0) return "its blocker had gone before it was seen";
  return `blocked by ${blocking.map(describeBlocker).join(", ")}`;
}

function describeBlocker(blocker: Blocker): string {
  const name = blocker.applicationName ? ` "${blocker.applicationName}"` : "";
  const details = [blocker.state, blocker.queryStart ? `query started ${blocker.queryStart.toISOString()}` : null].filter(Boolean);
  return `pid ${blocker.pid}${name}${details.length > 0 ? ` (${details.join(", ")})` : ""}`;
}
