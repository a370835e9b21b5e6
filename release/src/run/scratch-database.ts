/**
 * A scratch database on the target's server, for building the schema the migrations produce
 * without touching the real database: verify-rollbacks applies and rolls back every migration
 * there, baseline builds the schema it is asked to adopt and compares it with the live one.
 *
 * It is created from a session on the real database (the server's own, which needs CREATEDB),
 * given a session of its own with the job's settings, and dropped afterwards whatever happened.
 * On SIGTERM, SIGINT or the run budget the running statement is cancelled from the other session,
 * so the drop follows at once.
 */
import { randomBytes } from "node:crypto";
import type { Sql } from "postgres";
import { CancelledError, DatabaseUnavailableError } from "../shared/errors.ts";
import { cancelReasonOf, throwIfCancelled } from "../shared/cancellation.ts";
import { closeSession, errorCode, migrationSessionSettings, openSession, type Session } from "../database/database.ts";
import { describeTarget } from "../shared/redact.ts";
import { runModuleFunction, runStatements, type PlannedMigration } from "./runner.ts";
import type { MigrationPolicy, Runner } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";

/** What the scratch database is being used for right now, for the log when the run is cancelled. */
export interface Activity {
  current: string;
  migration: string | undefined;
}

export interface ScratchSession {
  readonly sql: Sql;
  /** Back to the session's starting state, as up does between files, so no file's SETs reach the next. */
  readonly reset: () => Promise<void>;
  readonly activity: Activity;
  readonly signal: AbortSignal;
}

export interface ScratchServer {
  /** A URL of the real database: the scratch database lives on the same server, as the same user. */
  readonly url: string;
  readonly connectTimeoutMs: number;
  readonly runner: Runner;
  readonly policy: MigrationPolicy;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

/** What the scratch database is for: the start of its name, and what the command says when it cannot create one. */
export interface ScratchPurpose {
  /** Every scratch database of a command starts with this, so one left behind by a killed run is recognisable. */
  readonly prefix: string;
  /** Appended to "cannot create the scratch database": what else the operator can do. */
  readonly otherwise: string;
}

export interface ScratchResult<T> {
  readonly database: string;
  readonly result: T;
}

export async function withScratchDatabase<T>(server: ScratchServer, purpose: ScratchPurpose, body: (scratch: ScratchSession) => Promise<T>): Promise<ScratchResult<T>> {
  throwIfCancelled(server.signal, "creating the scratch database");
  const database = `${purpose.prefix}${randomBytes(4).toString("hex")}`;
  const activity: Activity = { current: "connecting", migration: undefined };
  const admin = await connect(server, server.url, activity);
  try {
    await createDatabase(admin, database, server, purpose);
    let scratch: Session | undefined;
    const stopCancelling = cancelOnAbort(server, admin, () => scratch, activity);
    try {
      activity.current = "connecting to the scratch database";
      scratch = await connect(server, urlOfDatabase(server.url, database), activity, migrationSessionSettings(server.policy));
      const session = scratch;
      const result = await body({ sql: session.sql, reset: () => session.reset(), activity, signal: server.signal });
      return { database, result };
    } catch (error) {
      throw asCancelled(error, server.signal, activity);
    } finally {
      stopCancelling();
      await closeSession(scratch);
      await dropDatabase(admin, database, server.logger);
    }
  } finally {
    await closeSession(admin);
  }
}

/** As `up` runs it, without a tracking row: one transaction, or statement by statement for a no-transaction file. */
export async function applyInScratch(scratch: ScratchSession, plan: PlannedMigration, outcome: string): Promise<void> {
  const { file, module, statements } = plan;
  const { sql } = scratch;
  if (module) {
    await sql.begin((tx) => runModuleFunction(tx, file, module.up, outcome));
  } else if (file.transactional) {
    await sql.begin((tx) => runStatements(tx, file, statements, { outcome: () => outcome }));
  } else {
    await runStatements(sql, file, statements, { outcome: () => outcome });
  }
  await scratch.reset();
}

function connect(server: ScratchServer, url: string, activity: Activity, settings?: Record<string, string>): Promise<Session> {
  return openSession({
    url,
    connectTimeoutMs: server.connectTimeoutMs,
    runner: server.runner,
    logger: server.logger,
    signal: server.signal,
    ...(settings ? { settings } : {}),
    onNotice: (notice) => {
      const log = notice.severity === "WARNING" ? server.logger.warn : server.logger.info;
      log("notice", `${activity.migration ?? "server"}: ${notice.severity ?? "NOTICE"} ${notice.message}`, { migration: activity.migration, code: notice.code });
    },
  });
}

/** The same server, user and options, another database. */
function urlOfDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function createDatabase(admin: Session, database: string, server: ScratchServer, purpose: ScratchPurpose): Promise<void> {
  try {
    await admin.sql.unsafe(`create database ${database}`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new DatabaseUnavailableError(
      `cannot create the scratch database ${database} on ${describeTarget(server.url)}: ${message}. ` +
        `That needs a role allowed to create databases (CREATEDB); ${purpose.otherwise}`,
      errorCode(error),
      { cause: error },
    );
  }
  server.logger.info("scratch_created", `created the scratch database ${database}`, { database });
}

/** A drop that fails is reported with the command to finish it, and never hides the run's own outcome. */
async function dropDatabase(admin: Session, database: string, logger: Logger): Promise<void> {
  try {
    // FORCE ends any session still connected to it (one whose statement is still being cancelled).
    await admin.sql.unsafe(`drop database if exists ${database} with (force)`);
    logger.info("scratch_dropped", `dropped the scratch database ${database}`, { database });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.warn("scratch_not_dropped", `could not drop the scratch database ${database} (${message}); drop it with: drop database ${database} with (force)`, {
      database,
      code: errorCode(error),
    });
  }
}

function cancelOnAbort(server: ScratchServer, admin: Session, scratch: () => Session | undefined, activity: Activity): () => void {
  const cancel = () => {
    server.logger.warn("cancelling", `cancelling while ${activity.current}`, { interrupted: activity.current });
    const session = scratch();
    if (session && !session.lost && !admin.lost) admin.sql`select pg_cancel_backend(${session.pid})`.catch(() => undefined);
  };
  server.signal.addEventListener("abort", cancel, { once: true });
  return () => server.signal.removeEventListener("abort", cancel);
}

/** Whatever a cancelled statement failed with, the run was cancelled: say so, and exit 130 or 143. */
function asCancelled(error: unknown, signal: AbortSignal, activity: Activity): unknown {
  const reason = cancelReasonOf(signal);
  return reason && !(error instanceof CancelledError) ? new CancelledError(reason, activity.current) : error;
}
