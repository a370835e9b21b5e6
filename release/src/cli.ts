/**
 * Wires one invocation together: config from the edge, files, connections, the lock, then one
 * command. Returns the exit code; only the entry file exits the process.
 */
import type { Sql } from "postgres";
import { ConfigError, DatabaseRefusedError, DatabaseUnavailableError, ExitCode, MigrateError, RefusedError } from "./errors.ts";
import { environmentFailure, jobDatabase } from "./environment-errors.ts";
import { postgresDuration } from "./duration.ts";
import { CancelledError, cancelReasonOf, describeReason, pause, type CancelReason } from "./cancellation.ts";
import { RunHistory, type RecordedSchema, type RunEnd } from "./run-history.ts";
import { liveSchema } from "./drift.ts";
import { migrationSessionSettings } from "./runner.ts";
import { HELP, USAGE, defaultLogFormat, parseConfig, type Command, type CommandName, type Config, type DatabaseSource, type InstallLayout } from "./config.ts";
import { createLogger, type Logger, type LogSink } from "./log.ts";
import { describeTarget, Secrets, type Redactor } from "./redact.ts";
import { closeSession, openSession, type Session } from "./database.ts";
import { withMigrationLock } from "./lock.ts";
import { readMigrationFolder, warnIgnored, type MigrationFile, type MigrationFileSystem } from "./migration-files.ts";
import { MigrationStorage, type RunIdentity } from "./storage.ts";
import { loadSqlParser, type SqlParser } from "./sql-statements.ts";
import { startEmbeddedPostgres } from "./embedded.ts";
import { createConfirm } from "./confirm.ts";
import { up } from "./commands/up.ts";
import { resolve } from "./commands/resolve.ts";
import { status } from "./commands/status.ts";
import { plan } from "./commands/plan.ts";
import { rehearse } from "./commands/rehearse.ts";
import { down } from "./commands/down.ts";
import { baseline } from "./commands/baseline.ts";
import { create } from "./commands/create.ts";
import { check } from "./commands/check.ts";
import { verifyRollbacks } from "./commands/verify-rollbacks.ts";
import type { LockedRun, ReadOnlyRun, WriteDocument } from "./commands/context.ts";

/** The file-system calls of the job: reading migrations, and `create` writing new ones. */
export interface JobFileSystem extends MigrationFileSystem {
  /** Writes a new file; fails if it exists already. */
  writeNewFile(path: string, text: string): Promise<void>;
}

export interface Environment {
  readonly argv: readonly string[];
  readonly env: Record<string, string | undefined>;
  readonly sink: LogSink;
  readonly stdoutIsTty: boolean;
  /** Whether a person can answer at a terminal (down and baseline wait for Ctrl-C there). */
  readonly stdinIsTty: boolean;
  readonly layout: InstallLayout;
  readonly fs: JobFileSystem;
  /** `user@host` of whoever runs the job outside Railway. */
  readonly localUser: string;
  /** Aborted with a CancelReason when the process receives SIGTERM or SIGINT. */
  readonly signal: AbortSignal;
  /** `studio-release-migrations 0.1.0 (bun 1.4.4)`, recorded in the run history. */
  readonly runnerVersion: string;
}

/** Commands that take the migration lock: they change the database or run migration SQL. */
const LOCKED_COMMANDS: ReadonlySet<CommandName> = new Set(["up", "resolve", "down", "baseline", "rehearse"]);
/** Commands recorded in the run history: those that change the database (rehearse leaves it exactly as it was). */
const RECORDED_COMMANDS: ReadonlySet<CommandName> = new Set(["up", "resolve", "down", "baseline"]);

export async function main(environment: Environment): Promise<number> {
  const { env, sink } = environment;
  let config: Config | typeof HELP;
  try {
    config = parseConfig(environment.argv, env, environment.stdoutIsTty, environment.layout);
  } catch (error) {
    // LOG_FORMAT itself may be what is wrong: then fall back to the default for this output.
    const format = env.LOG_FORMAT === "text" || env.LOG_FORMAT === "json" ? env.LOG_FORMAT : defaultLogFormat(environment.stdoutIsTty);
    const logger = createLogger(format, sink, new Secrets([env.DATABASE_URL, env.DATABASE_PUBLIC_URL]).redact);
    return report(logger, error);
  }
  if (config === HELP) {
    sink.stdout(USAGE);
    return ExitCode.success;
  }
  const secrets = new Secrets([env.DATABASE_URL, env.DATABASE_PUBLIC_URL, config.database?.kind === "url" ? config.database.url : undefined]);
  const { redact } = secrets;
  // A command printing a JSON document owns stdout: its log lines all go to stderr.
  const documentOnStdout = "json" in config.command && config.command.json;
  const logger = createLogger(config.logFormat, documentOnStdout ? { stdout: sink.stderr, stderr: sink.stderr } : sink, redact);
  const writeDocument: WriteDocument = (text) => sink.stdout(redact(text));
  const budget = runBudget(config.runTimeoutMs);
  try {
    const services: RunServices = { logger, writeDocument, redact, loadParser: parserRevealingSecrets(secrets) };
    return await run(config, { ...environment, signal: AbortSignal.any([environment.signal, budget.signal]) }, services);
  } catch (error) {
    return report(logger, environmentFailure(error, { doing: `running ${config.command.name}` }) ?? error);
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

async function run(config: Config, environment: Environment, services: RunServices): Promise<ExitCode> {
  const { command, database } = config;
  const { logger, writeDocument, loadParser } = services;
  // Near misses are check's to refuse; every other command warns about them and goes on.
  const { files, ignored } = await readMigrationFolder(config.migrationsDir, environment.fs, { refuseIgnored: command.name === "check" });
  warnIgnored(ignored, logger);
  if (command.name === "create") return create({ files, migrationsDir: config.migrationsDir, fs: environment.fs, logger }, command);
  if (command.name === "check") {
    const { migrationsDir, lintMode } = config;
    return check({ files, migrationsDir, fs: environment.fs, logger, writeDocument, loadParser, lintMode, signal: environment.signal }, command);
  }
  if (!database) throw new Error(`${command.name} needs a database`);
  if (command.name === "verify-rollbacks") {
    return withDatabaseUrl(database, logger, (url) => verifyRollbacks({ files, url, config, logger, writeDocument, loadParser, signal: environment.signal }, command));
  }
  return withDatabaseUrl(database, logger, (url) => runAgainst(url, config, environment, services, files));
}

/** The URL to use: DATABASE_URL's, or that of the embedded PostgreSQL started (and stopped) around `body`. */
async function withDatabaseUrl(database: DatabaseSource, logger: Logger, body: (url: string) => Promise<ExitCode>): Promise<ExitCode> {
  if (database.kind === "url") return body(database.url);
  const server = await startEmbeddedPostgres(database.dataDir, database.port, database.dataDirChosen);
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
  config: Config,
  environment: Environment,
  services: RunServices,
  files: readonly MigrationFile[],
): Promise<ExitCode> {
  const { logger, writeDocument, redact, loadParser } = services;
  const identity = runIdentity(config, environment.localUser);
  const storage = new MigrationStorage(config.table, identity, redact);
  const history = new RunHistory(config.table, identity, environment.runnerVersion);
  const { signal } = environment;
  const { runner, command } = config;
  logger.info("run_started", `${command.name}: ${describeTarget(url)}, ${files.length} migration files, tracking table ${storage.qualifiedName}`, {
    command: command.name,
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
  const connect = (role: string, settings?: Record<string, string>) =>
    openSession({
      role,
      url,
      connectTimeoutMs: config.connectTimeoutMs,
      runner,
      logger,
      signal,
      ...(settings ? { settings } : {}),
      onNotice: (notice) => {
        const log = notice.severity === "WARNING" ? logger.warn : logger.info;
        log("notice", `${currentMigration ?? "server"}: ${notice.severity ?? "NOTICE"} ${notice.message}`, { migration: currentMigration, code: notice.code });
      },
    });
  const sessions: Session[] = [];
  const interrupted = () => (currentMigration ? `applying ${currentMigration}` : activity);
  const stopCancelling = cancelQueriesOnAbort(signal, sessions, logger, interrupted);
  /**
   * Whatever a cancelled statement failed with, the run was cancelled: say so, and exit 130 or 143.
   * A condition of the environment met by the job's own statements says what it is.
   */
  const explain = (error: unknown) => {
    const reason = cancelReasonOf(signal);
    if (reason && !(error instanceof CancelledError)) return new CancelledError(reason, interrupted());
    const where = sessions[0] && jobDatabase(sessions[0].sql, config.table.schema, [storage.qualifiedName, history.qualifiedName]);
    return environmentFailure(error, { doing: interrupted(), where }) ?? error;
  };
  try {
    const locking = LOCKED_COMMANDS.has(command.name);
    // Both sessions connect at once: each costs a round trip or three of authentication.
    const [work, lockSession] = await connectAll([connect("migration", migrationSessionSettings(config.policy)), ...(locking ? [connect("lock", lockSessionSettings(config))] : [])], sessions);
    const lint = { migrationsDir: config.migrationsDir, readFile: environment.fs.readFile, loadParser, mode: config.lintMode, signal };
    const readOnly: ReadOnlyRun = { files, sql: work!.sql, work: work!, storage, history, logger, writeDocument, loadParser, lint };
    activity = `running ${command.name}`;
    if (!lockSession) return await runReadOnly(command, readOnly);

    const recorded = RECORDED_COMMANDS.has(command.name);
    let unchangedSchema: RecordedSchema | undefined;
    if (recorded) {
      activity = `recording the run in ${history.qualifiedName}`;
      await history.recordStart(lockSession.sql, command.name);
    }
    activity = "waiting for the migration lock";
    const locked = withMigrationLock(lockSession, { waitMs: config.lockWaitMs, logger, signal }, (lock) => {
      activity = `running ${command.name}`;
      return runLocked(command, {
        ...readOnly,
        lock,
        monitor: { sql: lockSession.sql, workPid: work!.pid },
        policy: config.policy,
        signal,
        onMigration: (name) => (currentMigration = name),
        schemaUnchanged: (schema) => (unchangedSchema = schema),
        onAttemptFailed: (file, attempt) => history.recordLostAttempt(lockSession.sql, file.name, attempt),
        confirm: createConfirm({ interactive: environment.stdinIsTty, logger, wait: (ms) => pause(ms, signal), signal }),
      });
    });
    const outcome = locked.catch((error: unknown) => Promise.reject(explain(error)));
    const schemaNow = async (sql: Sql) => unchangedSchema ?? liveSchema(sql, config.table);
    // The lock's session writes the history; if it was lost, the migration session (when alive) does.
    const recorder = () => [lockSession, work!].find((session) => !session.lost) ?? lockSession;
    return recorded ? await recordOutcome(history, recorder, services, outcome, schemaNow) : await outcome;
  } catch (error) {
    throw explain(error);
  } finally {
    stopCancelling();
    await Promise.all(sessions.map(closeSession));
  }
}

/**
 * The lock's session writes the run history: its waits for table locks are bounded like the
 * migration session's, so a lock held on the job's tables cannot stall a run's records.
 */
function lockSessionSettings(config: Config): Record<string, string> {
  return { lock_timeout: postgresDuration(config.policy.lockTimeoutMs) };
}

/** Opens sessions side by side; every one that opened goes into `opened`, so all are closed even if another failed. */
async function connectAll(connecting: readonly Promise<Session>[], opened: Session[]): Promise<Session[]> {
  const results = await Promise.allSettled(connecting.map((session) => session.then((open) => (opened.push(open), open))));
  const failed = results.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<Session>).value);
}

/**
 * On SIGTERM, SIGINT or the run budget, each session's running query is cancelled from the other
 * session (a busy session cannot cancel itself), so its transaction rolls back at once.
 */
function cancelQueriesOnAbort(signal: AbortSignal, sessions: readonly Session[], logger: Logger, interrupted: () => string): () => void {
  const cancel = () => {
    const reason = cancelReasonOf(signal);
    if (reason) logger.warn("cancelling", `${describeReason(reason)}: cancelling while ${interrupted()}`, { interrupted: interrupted() });
    for (const target of sessions) {
      const other = sessions.find((session) => session !== target && !session.lost);
      if (other && !target.lost) other.sql`select pg_cancel_backend(${target.pid})`.catch(() => undefined);
    }
  };
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}

/**
 * Completes the run's history row whatever the outcome. A run whose checks passed also records the
 * schema it left, failed and cancelled runs included, since what the job committed before the
 * failure is the job's own work, never drift; a refused run records none, so the drift that refused
 * it is still there for the next run to see. A history write that fails is logged, never fatal.
 */
async function recordOutcome(
  history: RunHistory,
  recorder: () => Session,
  { logger, redact }: RunServices,
  outcome: Promise<ExitCode>,
  schemaNow: (sql: Sql) => Promise<RecordedSchema>,
): Promise<ExitCode> {
  const warn = (event: string, what: string) => (error: unknown) => {
    logger.warn(event, `${what}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  };
  const record = async (end: Omit<RunEnd, "schema">) => {
    const sql = recorder().sql;
    const schema = history.validated && end.outcome !== "refused" ? await schemaNow(sql).catch(warn("schema_not_recorded", "could not snapshot the schema for drift detection")) : undefined;
    await history.recordEnd(sql, { ...end, schema }).catch(warn("history_not_recorded", `could not record this run in ${history.qualifiedName}`));
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

function runReadOnly(command: Command, run: ReadOnlyRun): Promise<ExitCode> {
  switch (command.name) {
    case "status":
      return status(run, command);
    case "plan":
      return plan(run, command);
    default:
      throw new Error(`${command.name} is not a read-only command`);
  }
}

function runLocked(command: Command, run: LockedRun): Promise<ExitCode> {
  switch (command.name) {
    case "up":
      return up(run, command);
    case "resolve":
      return resolve(run, command);
    case "down":
      return down(run, command);
    case "baseline":
      return baseline(run, command);
    case "rehearse":
      return rehearse(run, command);
    default:
      throw new Error(`${command.name} does not run under the migration lock`);
  }
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
