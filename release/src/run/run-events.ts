/**
 * What happens during a run, as typed events: the runner and the commands emit them, and the
 * listeners the run is given turn them into log lines, run-history rows and the name of the
 * migration that server notices and cancellations are attributed to. Nothing below calls back up
 * into the code that set the run up.
 */
import type { LockAttempt } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { RecordedSchema } from "../database/run-history.ts";
import { formatDuration } from "../shared/duration.ts";

/** What is being done to a file: `up` applies it, `rehearse` runs it to roll it back, `down` undoes it. */
export type FileAction = "apply" | "rehearse" | "roll back";
/** What leaves its files changed when it commits: a rehearsal never does. */
export type ChangingAction = Exclude<FileAction, "rehearse">;

export type RunEvent =
  /** The work on one file begins; `work` says what runs: "5 statements", "TypeScript up()", "008_rollback.sql (3 statements)". */
  | { readonly type: "file_started"; readonly file: MigrationFile; readonly action: FileAction; readonly work: string }
  /** Its work committed (applied, or rolled back by down). */
  | { readonly type: "file_done"; readonly file: MigrationFile; readonly action: FileAction; readonly durationMs: number }
  /** The files the run means to apply (or roll back), in the order it will. */
  | { readonly type: "files_planned"; readonly files: readonly MigrationFile[]; readonly action: ChangingAction }
  /** No file is being worked on any more (the last one finished, or failed). */
  | { readonly type: "files_done" }
  /** One attempt at a transactional file lost to another session's locks and was rolled back; `retryInMs` is absent when no attempt is left. */
  | { readonly type: "attempt_lost"; readonly file: MigrationFile; readonly attempt: LockAttempt; readonly attempts: number; readonly retryInMs?: number }
  /** The schema as it stood before the run changed anything, for a run that then changed nothing. */
  | { readonly type: "schema_unchanged"; readonly schema: RecordedSchema };

export type RunListener = (event: RunEvent) => void | Promise<void>;

/** Where the runner and the commands send their events: each listener in turn, awaited. */
export interface RunEvents {
  emit(event: RunEvent): Promise<void>;
}

export function runEvents(listeners: readonly RunListener[]): RunEvents {
  return {
    async emit(event) {
      for (const listen of listeners) await listen(event);
    },
  };
}

export function migrationAttributes(file: MigrationFile): Record<string, unknown> {
  return { migration: file.name, version: file.version, file: file.fileName };
}

/** The deploy log's lines for the events. */
export function logListener(logger: Logger): RunListener {
  return (event) => {
    if (event.type === "file_started") logStarted(logger, event.file, event.action, event.work);
    else if (event.type === "file_done") logDone(logger, event.file, event.action, event.durationMs);
    else if (event.type === "attempt_lost" && event.retryInMs !== undefined) logRetry(logger, event.file, event.attempt, event.attempts, event.retryInMs);
  };
}

function logStarted(logger: Logger, file: MigrationFile, action: FileAction, work: string): void {
  const attributes = migrationAttributes(file);
  if (action === "apply") logger.info("migration_started", `applying ${file.fileName} (${work}, ${file.transactional ? "in one transaction" : "without a transaction"})`, attributes);
  else if (action === "rehearse") logger.info("migration_started", `rehearsing ${file.fileName} (${work})`, attributes);
  else logger.info("rollback_started", `rolling back ${file.fileName} with ${work}, in one transaction with removing its tracking row`, attributes);
}

function logDone(logger: Logger, file: MigrationFile, action: FileAction, durationMs: number): void {
  const attributes = { ...migrationAttributes(file), duration_ms: durationMs };
  if (action === "apply") logger.info("migration_applied", `applied ${file.fileName} in ${formatDuration(durationMs)}`, attributes);
  else if (action === "roll back") logger.info("rollback_applied", `rolled back ${file.fileName} in ${formatDuration(durationMs)}`, attributes);
}

function logRetry(logger: Logger, file: MigrationFile, attempt: LockAttempt, attempts: number, retryInMs: number): void {
  const cause = attempt.code === "55P03" ? "lock_timeout" : "deadlock";
  logger.warn(
    "migration_retry",
    `${file.fileName}: attempt ${attempt.attempt} of ${attempts} rolled back on SQLSTATE ${attempt.code} (${cause}), ${attempt.blockers}; retrying in ${formatDuration(retryInMs)}`,
    { ...migrationAttributes(file), attempt: attempt.attempt, code: attempt.code, blockers: attempt.blockers, retry_in_ms: retryInMs },
  );
}
