/**
 * Wires one invocation together: config from the edge, files, connections, the lock, then one
 * command. Returns the exit code; only the entry file exits the process.
 */
import { ConfigError, MigrateError, ExitCode } from "./errors.ts";
import { HELP, USAGE, defaultLogFormat, parseConfig, type Config, type InstallLayout } from "./config.ts";
import { createLogger, type Logger, type LogSink } from "./log.ts";
import { describeTarget, redactorFor } from "./redact.ts";
import { closeSession, openSession, type Session } from "./database.ts";
import { withMigrationLock } from "./lock.ts";
import { readMigrationFiles, type MigrationFileSystem } from "./migration-files.ts";
import { MigrationStorage, type RunIdentity } from "./storage.ts";
import { loadSqlParser } from "./sql-statements.ts";
import { startEmbeddedPostgres } from "./embedded.ts";
import { up } from "./commands/up.ts";
import { resolve } from "./commands/resolve.ts";
import type { LockedRun } from "./commands/locked-run.ts";

export interface Environment {
  readonly argv: readonly string[];
  readonly env: Record<string, string | undefined>;
  readonly sink: LogSink;
  readonly stdoutIsTty: boolean;
  readonly layout: InstallLayout;
  readonly fs: MigrationFileSystem;
  /** `user@host` of whoever runs the job outside Railway. */
  readonly localUser: string;
}

export async function main(environment: Environment): Promise<number> {
  const { env, sink } = environment;
  let config: Config | typeof HELP;
  try {
    config = parseConfig(environment.argv, env, environment.stdoutIsTty, environment.layout);
  } catch (error) {
    // LOG_FORMAT itself may be what is wrong: then fall back to the default for this output.
    const format = env.LOG_FORMAT === "text" || env.LOG_FORMAT === "json" ? env.LOG_FORMAT : defaultLogFormat(environment.stdoutIsTty);
    const logger = createLogger(format, sink, redactorFor(env.DATABASE_URL));
    return report(logger, error);
  }
  if (config === HELP) {
    sink.stdout(USAGE);
    return ExitCode.success;
  }
  const logger = createLogger(config.logFormat, sink, redactorFor(config.database.kind === "url" ? config.database.url : undefined));
  try {
    await run(config, environment, logger);
    return ExitCode.success;
  } catch (error) {
    return report(logger, error);
  }
}

async function run(config: Config, environment: Environment, logger: Logger): Promise<void> {
  const files = await readMigrationFiles(config.migrationsDir, environment.fs);
  if (config.database.kind === "url") return runAgainst(config.database.url, config, environment, logger, files);

  const { dataDir, port } = config.database;
  const server = await startEmbeddedPostgres(dataDir, port);
  logger.info("embedded_started", `embedded PostgreSQL is up (data in ${dataDir}); connect with: psql ${server.url}`, { url: server.url });
  try {
    await runAgainst(server.url, config, environment, logger, files);
  } finally {
    await server.stop();
    logger.info("embedded_stopped", "embedded PostgreSQL stopped; the next --embedded run starts it again with the same data");
  }
}

async function runAgainst(url: string, config: Config, environment: Environment, logger: Logger, files: LockedRun["files"]): Promise<void> {
  const identity = runIdentity(config, environment.localUser);
  const storage = new MigrationStorage(config.table, identity);
  const { runner } = config;
  logger.info("run_started", `${config.command.name}: ${describeTarget(url)}, ${files.length} migration files, tracking table ${storage.qualifiedName}`, {
    command: config.command.name,
    target: describeTarget(url),
    files: files.length,
    table: storage.qualifiedName,
    applied_by: identity.appliedBy,
    deployment_id: runner.deploymentId,
    git_commit: runner.gitCommit,
    environment: runner.environment,
  });

  let currentMigration: string | undefined;
  const connect = () =>
    openSession({
      url,
      connectTimeoutMs: config.connectTimeoutMs,
      runner,
      logger,
      onNotice: (notice) => {
        const log = notice.severity === "WARNING" ? logger.warn : logger.info;
        log("notice", `${currentMigration ?? "server"}: ${notice.severity ?? "NOTICE"} ${notice.message}`, { migration: currentMigration, code: notice.code });
      },
    });
  let lockSession: Session | undefined;
  let workSession: Session | undefined;
  try {
    lockSession = await connect();
    workSession = await connect();
    const sql = workSession.sql;
    await withMigrationLock(lockSession, { waitMs: config.lockWaitMs, logger }, async (lock) => {
      const locked: LockedRun = { files, sql, lock, storage, logger, onMigration: (name) => (currentMigration = name) };
      const { command } = config;
      if (command.name === "up") await up(locked, { allowOutOfOrder: command.allowOutOfOrder, loadParser: loadSqlParser });
      else await resolve(locked, command);
    });
  } finally {
    await Promise.all([closeSession(workSession), closeSession(lockSession)]);
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
