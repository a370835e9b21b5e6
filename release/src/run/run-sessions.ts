/**
 * The sessions of one run, with one owner: every command that connects opens its sessions here.
 * They are opened side by side (each costs a round trip or three of authentication); when the run
 * is cancelled (SIGTERM, SIGINT, the run budget) each one's running statement is cancelled from
 * another live one, since a busy session cannot cancel itself; server notices name the migration
 * being worked on; and all are closed when the body ends, whatever happened.
 */
import { closeSession, openSession, type Session } from "../database/database.ts";
import { environmentFailure, jobDatabase } from "../database/environment-errors.ts";
import { CancelledError, describeReason, MigrateError } from "../shared/errors.ts";
import { cancelReasonOf } from "../shared/cancellation.ts";
import type { Runner } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";

export interface SessionRequest {
  /** What the session is for, as a lost-session error and the logs name it. */
  readonly role: string;
  /** Another database on the same server (a scratch database); the run's own by default. */
  readonly url?: string;
  readonly settings?: Readonly<Record<string, string>>;
}

export interface RunSessionsOptions {
  readonly url: string;
  readonly connectTimeoutMs: number;
  readonly runner: Runner;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** The migration being worked on, for server notices; none between migrations. */
  readonly migration: () => string | undefined;
  /** What the run is doing, for the log line of a cancellation. */
  readonly activity: () => string;
}

export interface RunSessions {
  /** Opens sessions side by side; every one that opened is owned, so all are closed even if another failed. */
  open(requests: readonly SessionRequest[]): Promise<Session[]>;
  /** Every session opened so far, in the order they opened. */
  readonly all: readonly Session[];
  /** What a failure of the run was, named by its cause: see explainFailure. */
  explain(error: unknown, jobTables: JobTables): Promise<unknown>;
}

/** The schema of the job's tables and their qualified names, which the fixes of a refusal name. */
export interface JobTables {
  readonly schema: string;
  readonly tables: readonly string[];
}

export async function withRunSessions<T>(options: RunSessionsOptions, body: (sessions: RunSessions) => Promise<T>): Promise<T> {
  const all: Session[] = [];
  const pending = new Set<Promise<unknown>>();
  // A body may end while a session it asked for is still connecting (its folder was refused meanwhile): that one stops retrying.
  const ending = new AbortController();
  const openOptions = { ...options, signal: AbortSignal.any([options.signal, ending.signal]) };
  const stopCancelling = cancelOnAbort(options, all);
  try {
    return await body({
      open: (requests) => openAll(openOptions, requests, all, pending),
      all,
      explain: (error, jobTables) => explainFailure(error, options, all, jobTables),
    });
  } finally {
    stopCancelling();
    ending.abort();
    await Promise.allSettled(pending);
    await Promise.all(all.map(closeSession));
  }
}

async function openAll(options: RunSessionsOptions, requests: readonly SessionRequest[], owned: Session[], pending: Set<Promise<unknown>>): Promise<Session[]> {
  const opening = requests.map((request) => open(options, request).then((session) => (owned.push(session), session)));
  const all = Promise.allSettled(opening);
  pending.add(all);
  const results = await all;
  pending.delete(all);
  const failed = results.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<Session>).value);
}

function open(options: RunSessionsOptions, { role, url, settings }: SessionRequest): Promise<Session> {
  const { logger } = options;
  return openSession({
    role,
    url: url ?? options.url,
    connectTimeoutMs: options.connectTimeoutMs,
    runner: options.runner,
    logger,
    signal: options.signal,
    ...(settings ? { settings } : {}),
    onNotice: (notice) => {
      const migration = options.migration();
      const log = notice.severity === "WARNING" ? logger.warn : logger.info;
      log("notice", `${migration ?? "server"}: ${notice.severity ?? "NOTICE"} ${notice.message}`, { migration, code: notice.code });
    },
  });
}

/**
 * Whatever a cancelled statement failed with, the run was cancelled: say so, and exit 130 or 143.
 * Whatever a query on a closed connection failed with, that session was lost: say which.
 * A condition of the environment met by the job's own statements says what it is.
 */
async function explainFailure(error: unknown, options: RunSessionsOptions, sessions: readonly Session[], { schema, tables }: JobTables): Promise<unknown> {
  const reason = cancelReasonOf(options.signal);
  if (reason && !(error instanceof CancelledError)) return new CancelledError(reason, options.activity());
  const lost = error instanceof MigrateError ? undefined : await lostSession(sessions);
  if (lost) return lost.lostError(error);
  const first = sessions[0];
  const where = first && jobDatabase(first.sql, schema, tables);
  return environmentFailure(error, { doing: options.activity(), where }) ?? error;
}

/**
 * The session whose connection closed, if one did. A query in flight fails as its socket closes, a
 * moment before the session hears of the close: a few turns of the event loop let it.
 */
async function lostSession(sessions: readonly Session[]): Promise<Session | undefined> {
  for (let turn = 0; turn < LOSS_NOTICE_TURNS; turn++) {
    const lost = sessions.find((session) => session.lost);
    if (lost) return lost;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return undefined;
}

const LOSS_NOTICE_TURNS = 5;

function cancelOnAbort(options: RunSessionsOptions, sessions: readonly Session[]): () => void {
  const { signal, logger } = options;
  const cancel = () => {
    const reason = cancelReasonOf(signal);
    const activity = options.activity();
    if (reason) logger.warn("cancelling", `${describeReason(reason)}: cancelling while ${activity}`, { interrupted: activity });
    for (const target of sessions) {
      const other = sessions.find((session) => session !== target && !session.lost);
      if (other && !target.lost) other.sql`select pg_cancel_backend(${target.pid})`.catch(() => undefined);
    }
  };
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}
