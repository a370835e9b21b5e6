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
import { closeSession, errorCode, migrationSessionSettings, type Session } from "../database/database.ts";
import { withRunSessions } from "./run-sessions.ts";
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
  const options = { ...server, migration: () => activity.migration, activity: () => activity.current };
  return withRunSessions(options, async (sessions) => {
    const [admin] = await sessions.open([{ role: "server" }]);
    await createDatabase(admin!, database, server, purpose);
    try {
      activity.current = "connecting to the scratch database";
      const [scratch] = await sessions.open([{ role: "scratch", url: urlOfDatabase(server.url, database), settings: migrationSessionSettings(server.policy) }]);
      const result = await body({ sql: scratch!.sql, reset: () => scratch!.reset(), activity, signal: server.signal });
      return { database, result };
    } catch (error) {
      throw asCancelled(error, server.signal, activity);
    } finally {
      await Promise.all(sessions.all.filter((session) => session !== admin).map(closeSession));
      await dropDatabase(admin!, database, server.logger);
    }
  });
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

/** Whatever a cancelled statement failed with, the run was cancelled: say so, and exit 130 or 143. */
function asCancelled(error: unknown, signal: AbortSignal, activity: Activity): unknown {
  const reason = cancelReasonOf(signal);
  return reason && !(error instanceof CancelledError) ? new CancelledError(reason, activity.current) : error;
}
