/**
 * A command that runs against the target database, given what its table entry says it needs: the
 * run's sessions (one owner: withRunSessions), the run history (one owner: withRunRecord), and for
 * a locked command the migration lock, with the events its runner emits going to the log and the
 * history.
 */
import { ExitCode } from "../shared/errors.ts";
import { pause } from "../shared/cancellation.ts";
import type { Config } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { describeTarget, type Redactor } from "../shared/redact.ts";
import { migrationSessionSettings, type Session } from "../database/database.ts";
import { withMigrationLock } from "../database/lock.ts";
import { liveSchema } from "../database/drift.ts";
import { RunHistory } from "../database/run-history.ts";
import { MigrationStorage, type RunIdentity } from "../database/storage.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { SqlParser } from "../files/sql-statements.ts";
import { withRunSessions, type RunSessions } from "../run/run-sessions.ts";
import { withRunRecord } from "../run/run-record.ts";
import type { RunProgress } from "../run/run-progress.ts";
import { logListener, runEvents, type RunListener } from "../run/run-events.ts";
import type { AnyCommandEntry } from "../commands/table.ts";
import type { MigrationWork, ReadOnlyRun, WriteDocument } from "../commands/context.ts";
import { createConfirm } from "./confirm.ts";
import type { Environment } from "./environment.ts";

/** What every command of one run shares: where it writes, what it must never write, and the parser. */
export interface RunServices {
  readonly logger: Logger;
  readonly writeDocument: WriteDocument;
  /** For what the job stores rather than prints: the run history's and the tracking table's error messages. */
  readonly redact: Redactor;
  readonly loadParser: () => Promise<SqlParser>;
  /** What the run applied, where it stopped, what it never reached: the last line of a failure says so. */
  readonly progress: RunProgress;
}

export async function runAgainstDatabase(
  url: string,
  config: Config<AnyCommandEntry>,
  environment: Environment,
  services: RunServices,
  folder: Promise<readonly MigrationFile[]>,
): Promise<ExitCode> {
  const { logger, writeDocument, redact, loadParser } = services;
  const identity = runIdentity(config, environment.localUser);
  const storage = new MigrationStorage(config.table, identity, redact);
  const history = new RunHistory(storage.jobTable, identity, environment.runnerVersion);
  const { signal, host } = environment;
  const { runner } = config;
  const { entry, options } = config.command;

  let currentMigration: string | undefined;
  let activity = "connecting";
  const interrupted = () => (currentMigration ? `applying ${currentMigration}` : activity);
  // Server notices and a cancellation name the file being worked on.
  const followMigration: RunListener = (event) => {
    if (event.type === "file_started") currentMigration = event.file.name;
    if (event.type === "files_done") currentMigration = undefined;
  };
  const jobTables = { schema: config.table.schema, tables: [storage.qualifiedName, history.qualifiedName] };
  const sessionOptions = { url, connectTimeoutMs: config.connectTimeoutMs, runner, logger, signal, migration: () => currentMigration, activity: interrupted };
  return withRunSessions(sessionOptions, async (sessions) => {
    const explained = async (error: unknown) => Promise.reject(await sessions.explain(error, jobTables));
    const locking = entry.needs === "locked";
    // The first session connects while the folder is read: connecting changes nothing, so a folder
    // refused meanwhile still leaves the database as it was, and the session is closed unused.
    const settings = migrationSessionSettings(config.policy);
    const connecting = sessions.open([{ role: locking ? "lock" : "migration", settings }]);
    connecting.catch(() => undefined);
    const files = await folder;
    logRunStarted(logger, url, config, files.length, storage.qualifiedName, identity);
    try {
      const [first] = await connecting;
      const lint = { migrationsDir: config.migrationsDir, readFile: host.fs.readFile, squawk: host.squawk, loadParser, mode: config.lintMode, signal };
      const readOnly: ReadOnlyRun = { files, sql: first!.sql, storage, history, logger, writeDocument, loadParser, lint };
      activity = `running ${entry.name}`;
      if (entry.needs === "read") return await entry.invoke(readOnly, options);
      if (entry.needs !== "locked") throw new Error(`${entry.name} does not run against the target database`);
      const lockSession = first!;
      const migrationWork = once(async (): Promise<MigrationWork> => {
        const [work] = await sessions.open([{ role: "migration", settings }]);
        return { sql: work!.sql, work: work!, monitor: { sql: lockSession.sql, workPid: work!.pid } };
      });

      const underLock = (recordListener?: RunListener) => {
        activity = "waiting for the migration lock";
        const locked = withMigrationLock(lockSession, { waitMs: config.lockWaitMs, logger, signal }, (lock) => {
          activity = `running ${entry.name}`;
          return entry.invoke({
            ...readOnly,
            lock,
            migrationWork,
            policy: config.policy,
            signal,
            events: runEvents([logListener(logger), followMigration, services.progress.listener, ...(recordListener ? [recordListener] : [])]),
            confirm: createConfirm({ interactive: environment.stdinIsTty, logger, wait: (ms) => pause(ms, signal), signal }),
            scratch: { url, connectTimeoutMs: config.connectTimeoutMs, runner, policy: config.policy, logger, signal },
          }, options);
        });
        return locked.catch(explained);
      };
      if (!entry.recorded) return await underLock();
      activity = `recording the run in ${history.qualifiedName}`;
      return await withRunRecord(
        {
          history,
          command: entry.recordedAs(options),
          opening: lockSession,
          recorder: liveRecorder(sessions),
          liveSchema: (sql) => liveSchema(sql, config.table),
          logger,
          redact,
        },
        underLock,
      );
    } catch (error) {
      return explained(error);
    }
  });
}

/** `make`, called at most once: later calls share its promise. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/**
 * The lock's session writes the history; if it was lost, the migration session does (when the run
 * opened one), and if none is left, a session opened for that alone (it runs no migration SQL, only
 * the record).
 */
function liveRecorder(sessions: RunSessions): () => Promise<Session> {
  return async () => sessions.all.find((session) => !session.lost) ?? (await sessions.open([{ role: "history" }]))[0]!;
}

function logRunStarted(logger: Logger, url: string, config: Config<AnyCommandEntry>, files: number, table: string, identity: RunIdentity): void {
  const { runner } = config;
  const command = config.command.entry.name;
  logger.info("run_started", `${command}: ${describeTarget(url)}, ${files} migration files, tracking table ${table}`, {
    command,
    target: describeTarget(url),
    files,
    table,
    applied_by: identity.appliedBy,
    deployment_id: runner.deploymentId,
    git_commit: runner.gitCommit,
    environment: runner.environment,
  });
}

function runIdentity(config: Config, localUser: string): RunIdentity {
  const { deploymentId, gitCommit, environment } = config.runner;
  return { appliedBy: deploymentId ? `railway deployment ${deploymentId}` : localUser, deploymentId, gitCommit, environment };
}
