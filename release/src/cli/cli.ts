/**
 * One invocation: parses the config at the edge, reads the migration folder, gives the command
 * what its table entry says it needs (no more than the files, a server, or the target database
 * through database-run.ts), and reports how it ended. Returns the exit code; only the entry file
 * exits the process.
 */
import { ConfigError, ExitCode, MigrateError, type CancelReason } from "../shared/errors.ts";
import { environmentFailure } from "../database/environment-errors.ts";
import { HELP, VERSION, defaultLogFormat, parseConfig, usageText, type Config, type DatabaseSource } from "../shared/config.ts";
import { createLogger, wantsColour, type Logger } from "../shared/log.ts";
import { Secrets } from "../shared/redact.ts";
import { renderFixCommands } from "../shared/invocation.ts";
import { readMigrationFolder, warnIgnored } from "../files/migration-files.ts";
import { loadSqlParser, type SqlParser } from "../files/sql-statements.ts";
import { COMMANDS, type AnyCommandEntry } from "../commands/table.ts";
import type { WriteDocument } from "../commands/context.ts";
import type { Environment, Host } from "./environment.ts";
import { runAgainstDatabase, type RunServices } from "./database-run.ts";
import { describeProgress, progressAttributes, RunProgress, type ProgressSummary } from "../run/run-progress.ts";

export async function main(environment: Environment): Promise<number> {
  const { env, sink } = environment;
  let config: Config<AnyCommandEntry> | typeof HELP | typeof VERSION;
  try {
    config = parseConfig(environment.argv, env, environment.stdoutIsTty, environment.layout, COMMANDS);
  } catch (error) {
    // LOG_FORMAT itself may be what is wrong: then fall back to the default for this output.
    const format = env.LOG_FORMAT === "text" || env.LOG_FORMAT === "json" ? env.LOG_FORMAT : defaultLogFormat(environment.stdoutIsTty);
    const logger = createLogger(format, sink, new Secrets([env.DATABASE_URL, env.DATABASE_PUBLIC_URL]).redact, wantsColour(environment.stderrIsTty, env));
    return report(logger, error);
  }
  if (config === HELP) {
    sink.stdout(usageText(COMMANDS));
    return ExitCode.success;
  }
  if (config === VERSION) {
    sink.stdout(environment.runnerVersion);
    return ExitCode.success;
  }
  const secrets = new Secrets([env.DATABASE_URL, env.DATABASE_PUBLIC_URL, config.database?.kind === "url" ? config.database.url : undefined]);
  // Every line written or stored passes here: the secrets go, and each fix command takes the form
  // its reader can run (from a laptop with railway run, for the log of a Railway deploy).
  const fromDeployLog = config.runner.deploymentId !== undefined;
  const redact = (text: string) => renderFixCommands(secrets.redact(text), fromDeployLog);
  // A command printing a JSON document owns stdout: its log lines all go to stderr.
  const documentOnStdout = config.command.printsDocument;
  const logger = createLogger(config.logFormat, documentOnStdout ? { stdout: sink.stderr, stderr: sink.stderr } : sink, redact, wantsColour(environment.stderrIsTty, env));
  const writeDocument: WriteDocument = (text) => sink.stdout(redact(text));
  const budget = runBudget(config.runTimeoutMs);
  const progress = new RunProgress();
  try {
    const services: RunServices = { logger, writeDocument, redact, loadParser: parserRevealingSecrets(secrets, environment.host), progress };
    return await run(config, { ...environment, signal: AbortSignal.any([environment.signal, budget.signal]) }, services);
  } catch (error) {
    return report(logger, environmentFailure(error, { doing: `running ${config.command.entry.name}` }) ?? error, progress.summary());
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

/**
 * The parser, telling `secrets` of the password literals of every file it parses, so that no line
 * the job prints shows one, whatever path it takes (a server message quoting it, a NOTICE).
 * Nothing can print a file's statements before they are parsed.
 */
function parserRevealingSecrets(secrets: Secrets, host: Host): () => Promise<SqlParser> {
  return async () => {
    const parser = await loadSqlParser(host.parserModule);
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
  const readFolder = () =>
    readMigrationFolder(config.migrationsDir, fs, { refuseIgnored: entry.refusesIgnoredFiles }).then(({ files, ignored }) => {
      warnIgnored(ignored, logger);
      return files;
    });
  const { migrationsDir, lintMode } = config;
  if (entry.needs === "files") {
    return entry.invoke({ files: await readFolder(), migrationsDir, fs, squawk, logger, writeDocument, loadParser, lintMode, signal: environment.signal }, options);
  }
  if (!database) throw new Error(`${entry.name} needs a database`);
  if (entry.needs === "server") {
    const files = await readFolder();
    return withDatabaseUrl(database, environment.host, logger, (url) => entry.invoke({ files, url, config, logger, writeDocument, loadParser, signal: environment.signal }, options));
  }
  const folder = readFolder();
  // A local server starts only for a folder that passed; a remote one is connected to while the folder is read.
  if (database.kind === "embedded") await folder;
  return withDatabaseUrl(database, environment.host, logger, (url) => runAgainstDatabase(url, config, environment, services, folder));
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

/** The run's last line: what failed, and, once the run planned what to apply, what of it is live now. */
function report(logger: Logger, error: unknown, progress?: ProgressSummary): number {
  const sofar = progress ? `\n    ${describeProgress(progress)}` : "";
  const progressed = progress ? progressAttributes(progress) : {};
  if (error instanceof MigrateError) {
    const event = error instanceof ConfigError ? "config_invalid" : "run_failed";
    logger.error(event, `${error.message}${sofar}`, { error: error.kind, exit_code: error.exitCode, ...error.attributes(), ...progressed });
    return error.exitCode;
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  logger.error("run_failed", `unexpected error (a bug in the migration job, please report it): ${detail}${sofar}`, { error: "unexpected", exit_code: ExitCode.migrationFailed, ...progressed });
  return ExitCode.migrationFailed;
}
