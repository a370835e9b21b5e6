/**
 * Wires one invocation together: config from the edge, files, connections, the lock, then one
 * command. Returns the exit code; only the entry file exits the process.
 */
import type { Sql } from "postgres";
import { CancelledError, ConfigError, DatabaseRefusedError, DatabaseUnavailableError, ExitCode, MigrateError, RefusedError, type CancelReason } from "../shared/errors.ts";
import { environmentFailure, jobDatabase } from "../database/environment-errors.ts";
import { cancelReasonOf, pause } from "../shared/cancellation.ts";
import { RunHistory, type RecordedSchema, type RunEnd } from "../database/run-history.ts";
import { liveSchema } from "../database/drift.ts";
import { HELP, defaultLogFormat, parseConfig, usageText, type Config, type DatabaseSource } from "../shared/config.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { describeTarget, Secrets, type Redactor } from "../shared/redact.ts";
import { lockSessionSettings, migrationSessionSettings, type Session } from "../database/database.ts";
import { withMigrationLock } from "../database/lock.ts";
import { readMigrationFolder, warnIgnored, type MigrationFile } from "../files/migration-files.ts";
import { MigrationStorage, type RunIdentity } from "../database/storage.ts";
import { loadSqlParser, type SqlParser } from "../files/sql-statements.ts";
import type { Environment, Host } from "./environment.ts";
import { createConfirm } from "./confirm.ts";
import { COMMANDS, type AnyCommandEntry } from "../commands/table.ts";
import { withRunSessions } from "../run/run-sessions.ts";
import { logListener, runEvents } from "../run/run-events.ts";
import type { ReadOnlyRun, WriteDocument } from "../commands/context.ts";

export async function main(environment: Environment): Promise<number> {
  const { env, sink } = environment;
  let config: Config<AnyCommandEntry> | typeof HELP;
  try {
    config = parseConfig(environment.argv, env, environment.stdoutIsTty, environment.layout, COMMANDS);
  } catch (error) {
    // LOG_FORMAT itself may be what is wrong: then fall back to the default for this output.
    const format = env.LOG_FORMAT === "text" || env.LOG_FORMAT === "json" ? env.LOG_FORMAT : defaultLogFormat(environment.stdoutIsTty);
    const logger = createLogger(format, sink, new Secrets([env.DATABASE_URL, env.DATABASE_PUBLIC_URL]).redact);
    return report(logger, error);
  }
  if (config === HELP) {
    sink.stdout(usageText(COMMANDS));
    return ExitCode.success;
  }
  const secrets = new Secrets([env.DATABASE_URL, env.DATABASE_PUBLIC_URL, config.database?.kind === "url" ? config.database.url : undefined]);
  const { redact } = secrets;
  // A command printing a JSON document owns stdout: its log lines all go to stderr.
  const documentOnStdout = config.command.printsDocument;
  const logger = createLogger(config.logFormat, documentOnStdout ? { stdout: sink.stderr, stderr: sink.stderr } : sink, redact);
  const writeDocument: WriteDocument = (text) => sink.stdout(redact(text));
  const budget = runBudget(config.runTimeoutMs);
  try {
    const services: RunServices = { logger, writeDocument, redact, loadParser: parserRevealingSecrets(secrets) };
    return await run(config, { ...environment, signal: AbortSignal.any([environment.signal, budget.signal]) }, services);
  } catch (error) {
    return report(logger, environmentFailure(error, { doing: `running ${config.command.entry.name}` }) ?? error);
  } finally {
    budget.clear();
  }
}

/** MIGRATE_RUN_TIMEOUT: aborts the run like a signal would, once the budget is spent. */
function runBudget(limitMs: number | undefined): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  if (limitMs === undefined) return { signal: controller.signal, clear: () => undefined };
  const reason: CancelReason = { kind: "budget", limitMs };
  const timer = setTimeout(() => controller.abort(reason), limitMs);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** What every command of one run shares: where it writes, what it must never write, and the parser. */
interface RunServices {
  readonly logger: Logger;
  readonly writeDocument: WriteDocument;
  /** For what the job stores rather than prints: the run history's and the tracking table's error messages. */
  readonly redact: Redactor;
  readonly loadParser: () => Promise<SqlParser>;
}

/**
 * The parser, telling `secrets` of the password literals of every file it parses, so that no line
 * the job prints shows one, whatever path it takes (a server message quoting it, a NOTICE).
 * Nothing can print a file's statements before they are parsed.
 */
function parserRevealingSecrets(secrets: Secrets): () => Promise<SqlParser> {
  return async () => {
    const parser = await loadSqlParser();
    return {
      ...parser,
      statements: (file) => {
        const statements = parser.statements(file);
        for (const statement of statements) secrets.add(statement.secrets);
        return statements;
      },
    };
  };
}

/** Gives the command what its table entry says it needs, and runs it. */
async function run(config: Config<AnyCommandEntry>, environment: Environment, services: RunServices): Promise<ExitCode> {
  const { command, database } = config;
  const { entry, options } = command;
  const { logger, writeDocument, loadParser } = services;
  // Near misses are refused by the command that checks the folder for CI; every other command warns and goes on.
  const { fs, squawk } = environment.host;
  const { files, ignored } = await readMigrationFolder(config.migrationsDir, fs, { refuseIgnored: entry.refusesIgnoredFiles });
  warnIgnored(ignored, logger);
  const { migrationsDir, lintMode } = config;
  if (entry.needs === "files") {
    return entry.invoke({ files, migrationsDir, fs, squawk, logger, writeDocument, loadParser, lintMode, signal: environment.signal }, options);
  }
  if (!database) throw new Error(`${entry.name} needs a database`);
  if (entry.needs === "server") {
    return withDatabaseUrl(database, environment.host, logger, (url) => entry.invoke({ files, url, config, logger, writeDocument, loadParser, signal: environment.signal }, options));
  }
  return withDatabaseUrl(database, environment.host, logger, (url) => runAgainst(url, config, environment, services, files));
}

/** The URL to use: DATABASE_URL's, or that of the embedded PostgreSQL started (and stopped) around `body`. */
async function withDatabaseUrl(database: DatabaseSource, host: Host, logger: Logger, body: (url: string) => Promise<ExitCode>): Promise<ExitCode> {
  if (database.kind === "url") return body(database.url);
  const server = await host.startEmbeddedPostgres(database.dataDir, database.port, database.dataDirChosen);
  const where = server.fallbackReason ? `${server.dataDir}, because ${server.fallbackReason}` : server.dataDir;
  logger.info("embedded_started", `embedded PostgreSQL is up (data in ${where}); connect with: psql ${server.url}`, { url: server.url, data_dir: server.dataDir });
  try {
    return await body(server.url);
  } finally {
    await server.stop();
    logger.info("embedded_stopped", "embedded PostgreSQL stopped; the next --embedded run starts it again with the same data");
  }
}

async function runAgainst(
  url: string,
  config: Config<AnyCommandEntry>,
  environment: Environment,
  services: RunServices,
  files: readonly MigrationFile[],
): Promise<ExitCode> {
  const { logger, writeDocument, redact, loadParser } = services;
  const identity = runIdentity(config, environment.localUser);
  const storage = new MigrationStorage(config.table, identity, redact);
  const history = new RunHistory(config.table, identity, environment.runnerVersion);
  const { signal } = environment;
  const { runner } = config;
  const { entry, options } = config.command;
  logger.info("run_started", `${entry.name}: ${describeTarget(url)}, ${files.length} migration files, tracking table ${storage.qualifiedName}`, {
    command: entry.name,
    target: describeTarget(url),
    files: files.length,
    table: storage.qualifiedName,
    applied_by: identity.appliedBy,
    deployment_id: runner.deploymentId,
    git_commit: runner.gitCommit,
    environment: runner.environment,
  });

  let currentMigration: string | undefined;
  let activity = "connecting";
  const interrupted = () => (currentMigration ? `applying ${currentMigration}` : activity);
  const sessionOptions = { url, connectTimeoutMs: config.connectTimeoutMs, runner, logger, signal, migration: () => currentMigration, activity: interrupted };
  return withRunSessions(sessionOptions, async (sessions) => {
    /**
     * Whatever a cancelled statement failed with, the run was cancelled: say so, and exit 130 or 143.
     * Whatever a query on a closed connection failed with, that session was lost: say which.
     * A condition of the environment met by the job's own statements says what it is.
     */
    const explain = async (error: unknown) => {
      const reason = cancelReasonOf(signal);
      if (reason && !(error instanceof CancelledError)) return new CancelledError(reason, interrupted());
      const lost = error instanceof MigrateError ? undefined : await lostSession(sessions.all);
      if (lost && !(error instanceof MigrateError)) return lost.lostError(error);
      const first = sessions.all[0];
      const where = first && jobDatabase(first.sql, config.table.schema, [storage.qualifiedName, history.qualifiedName]);
      return environmentFailure(error, { doing: interrupted(), where }) ?? error;
    };
    try {
      const locking = entry.needs === "locked";
      const [work, lockSession] = await sessions.open([
        { role: "migration", settings: migrationSessionSettings(config.policy) },
        ...(locking ? [{ role: "lock", settings: lockSessionSettings(config.policy) }] : []),
      ]);
      const lint = { migrationsDir: config.migrationsDir, readFile: environment.host.fs.readFile, squawk: environment.host.squawk, loadParser, mode: config.lintMode, signal };
      const readOnly: ReadOnlyRun = { files, sql: work!.sql, work: work!, storage, history, logger, writeDocument, loadParser, lint };
      activity = `running ${entry.name}`;
      if (entry.needs === "read") return await entry.invoke(readOnly, options);
      if (entry.needs !== "locked" || !lockSession) throw new Error(`${entry.name} does not run against the target database`);

      const { recorded } = entry;
      let unchangedSchema: RecordedSchema | undefined;
      if (recorded) {
        activity = `recording the run in ${history.qualifiedName}`;
        await history.recordStart(lockSession.sql, entry.recordedAs(options));
      }
      activity = "waiting for the migration lock";
      const locked = withMigrationLock(lockSession, { waitMs: config.lockWaitMs, logger, signal }, (lock) => {
        activity = `running ${entry.name}`;
        return entry.invoke({
          ...readOnly,
          lock,
          monitor: { sql: lockSession.sql, workPid: work!.pid },
          policy: config.policy,
          signal,
          events: runEvents([
            logListener(logger),
            // Server notices and a cancellation name the file being worked on.
            (event) => {
              if (event.type === "file_started") currentMigration = event.file.name;
              if (event.type === "files_done") currentMigration = undefined;
            },
            // The run history: every lost attempt, and the schema a run that changed nothing found.
            async (event) => {
              if (event.type === "attempt_lost") await history.recordLostAttempt(lockSession.sql, event.file.name, event.attempt);
              if (event.type === "schema_unchanged") unchangedSchema = event.schema;
            },
          ]),
          confirm: createConfirm({ interactive: environment.stdinIsTty, logger, wait: (ms) => pause(ms, signal), signal }),
          scratch: { url, connectTimeoutMs: config.connectTimeoutMs, runner, policy: config.policy, logger, signal },
        }, options);
      });
      const outcome = locked.catch(async (error: unknown) => Promise.reject(await explain(error)));
      const schemaNow = async (sql: Sql) => unchangedSchema ?? liveSchema(sql, config.table);
      // The lock's session writes the history; if it was lost, the migration session does, and if
      // both were, a session opened for that alone (it runs no migration SQL, only the record).
      const recorder = async () => [lockSession, work!].find((session) => !session.lost) ?? (await sessions.open([{ role: "history" }]))[0]!;
      return recorded ? await recordOutcome(history, recorder, services, outcome, schemaNow) : await outcome;
    } catch (error) {
      throw await explain(error);
    }
  });
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

/**
 * Completes the run's history row whatever the outcome. A run whose checks passed also records the
 * schema it left, failed and cancelled runs included, since what the job committed before the
 * failure is the job's own work, never drift; a refused run records none, so the drift that refused
 * it is still there for the next run to see. A history write that fails is logged, never fatal.
 */
async function recordOutcome(
  history: RunHistory,
  recorder: () => Promise<Session>,
  { logger, redact }: RunServices,
  outcome: Promise<ExitCode>,
  schemaNow: (sql: Sql) => Promise<RecordedSchema>,
): Promise<ExitCode> {
  const warn = (event: string, what: string) => (error: unknown) => {
    logger.warn(event, `${what}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  };
  const record = async (end: Omit<RunEnd, "schema">) => {
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
  };
  try {
    const code = await outcome;
    await record({ outcome: code === ExitCode.success ? "succeeded" : "failed" });
    return code;
  } catch (error) {
    await record(runEndFor(error, redact));
    throw error;
  }
}

/** The run's end as the history records it; its message masked like a log line, as it is as durable as one. */
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

function runIdentity(config: Config, localUser: string): RunIdentity {
  const { deploymentId, gitCommit, environment } = config.runner;
  return { appliedBy: deploymentId ? `railway deployment ${deploymentId}` : localUser, deploymentId, gitCommit, environment };
}

function report(logger: Logger, error: unknown): number {
  if (error instanceof MigrateError) {
    const event = error instanceof ConfigError ? "config_invalid" : "run_failed";
    logger.error(event, error.message, { error: error.kind, exit_code: error.exitCode, ...error.attributes() });
    return error.exitCode;
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  logger.error("run_failed", `unexpected error (a bug in the migration job, please report it): ${detail}`, { error: "unexpected", exit_code: ExitCode.migrationFailed });
  return ExitCode.migrationFailed;
}
