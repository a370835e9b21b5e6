/**
 * The run's history row, with one owner: opened before the lock is asked for, fed by the run's
 * events while it works, and completed whatever the outcome, through whichever session is still
 * alive. Commands never write the run history themselves.
 */
import type { Sql } from "postgres";
import { CancelledError, DatabaseRefusedError, DatabaseUnavailableError, ExitCode, MigrateError, RefusedError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import type { Redactor } from "../shared/redact.ts";
import type { Session } from "../database/database.ts";
import type { RecordedSchema, RunEnd, RunHistory } from "../database/run-history.ts";
import type { RunListener } from "./run-events.ts";

export interface RunRecordOptions {
  readonly history: RunHistory;
  /** The command as the history names it (`up`, `baseline --skip-schema-check`). */
  readonly command: string;
  /** The session that writes the opening row. */
  readonly opening: Session;
  /** A live session for the closing row: the first one not lost, or one opened for that alone. */
  readonly recorder: () => Promise<Session>;
  /** The schema the run leaves, recorded so that the next run can tell drift from the job's own work. */
  readonly liveSchema: (sql: Sql) => Promise<RecordedSchema>;
  readonly logger: Logger;
  /** The closing row's error message is masked like a log line, as it is as durable as one. */
  readonly redact: Redactor;
}

/**
 * Records the run's start, runs `body` with the listener that records lost attempts and the
 * unchanged schema, then records its end. A run whose checks passed also records the schema it
 * left, failed and cancelled runs included, since what the job committed before the failure is the
 * job's own work, never drift; a refused run records none, so the drift that refused it is still
 * there for the next run to see. A closing write that fails is logged, never fatal.
 */
export async function withRunRecord(options: RunRecordOptions, body: (listener: RunListener) => Promise<ExitCode>): Promise<ExitCode> {
  const { history, opening } = options;
  await history.recordStart(opening.sql, options.command);
  let unchangedSchema: RecordedSchema | undefined;
  const listener: RunListener = async (event) => {
    if (event.type === "attempt_lost") await history.recordLostAttempt(opening.sql, event.file.name, event.attempt);
    if (event.type === "schema_unchanged") unchangedSchema = event.schema;
  };
  const schemaNow = async (sql: Sql) => unchangedSchema ?? options.liveSchema(sql);
  try {
    const code = await body(listener);
    await recordEnd(options, schemaNow, { outcome: code === ExitCode.success ? "succeeded" : "failed" });
    return code;
  } catch (error) {
    await recordEnd(options, schemaNow, runEndFor(error, options.redact));
    throw error;
  }
}

async function recordEnd(options: RunRecordOptions, schemaNow: (sql: Sql) => Promise<RecordedSchema>, end: Omit<RunEnd, "schema">): Promise<void> {
  const { history, logger, recorder } = options;
  const warn = (event: string, what: string) => (error: unknown) => {
    logger.warn(event, `${what}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  };
  const write = async (session: Session) => {
    const schema = history.validated && end.outcome !== "refused" ? await schemaNow(session.sql).catch(warn("schema_not_recorded", "could not snapshot the schema for drift detection")) : undefined;
    await history.recordEnd(session.sql, { ...end, schema });
  };
  const writeThroughLiveSession = async () => {
    const first = await recorder();
    // A session that was closing when it was chosen: once it is known lost, the recorder offers another.
    await write(first).catch(async (error: unknown) => {
      const next = await recorder();
      if (next === first) throw error;
      await write(next);
    });
  };
  await writeThroughLiveSession().catch(warn("history_not_recorded", `could not record this run in ${history.qualifiedName}`));
}

function runEndFor(error: unknown, redact: Redactor): RunEnd {
  const message = redact(error instanceof Error ? error.message : String(error));
  const code = error instanceof MigrateError ? (error.attributes().code as string | undefined) : undefined;
  const outcome: RunEnd["outcome"] =
    error instanceof CancelledError
      ? "cancelled"
      : error instanceof RefusedError || error instanceof DatabaseRefusedError
        ? "refused"
        : error instanceof DatabaseUnavailableError
          ? "unavailable"
          : "failed";
  return { outcome, errorCode: code, errorMessage: message };
}
