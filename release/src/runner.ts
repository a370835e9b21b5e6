/**
 * Applies planned migrations through Umzug, one at a time. A transactional file runs inside one
 * transaction together with its tracking row; a no-transaction file runs statement by statement
 * and is marked running, then applied or failed, so a failure part-way is never forgotten.
 */
import { MigrationError as UmzugMigrationError, Umzug } from "umzug";
import type { Sql, TransactionSql } from "postgres";
import { MigrateError, MigrationFailedError, RefusedError, RunAbortedError, type Refusal, type ServerError } from "./errors.ts";
import { errorCode, type Queryable } from "./database.ts";
import { formatDuration } from "./duration.ts";
import { plural } from "./table-format.ts";
import { locateInFile, transactionControlRefusals, type SqlParser, type Statement } from "./sql-statements.ts";
import { loadTypeScriptMigration, locateInModule, type MigrationFunction, type TypeScriptMigration } from "./typescript-migrations.ts";
import type { HeldLock } from "./lock.ts";
import type { Logger } from "./log.ts";
import type { MigrationFile, SqlSource } from "./migration-files.ts";
import type { MigrationContext, MigrationStorage } from "./storage.ts";
import { COMMAND } from "./migration-state.ts";

/** A pending file, checked and ready to run. */
export interface PlannedMigration {
  readonly file: MigrationFile;
  /** The SQL statements, in order; none for a TypeScript migration. */
  readonly statements: readonly Statement[];
  /** The loaded module of a TypeScript migration. */
  readonly module: TypeScriptMigration | undefined;
}

/**
 * Parses every SQL file and loads every TypeScript one, refusing all problems together (syntax,
 * transaction control in a transactional file, an empty file, a bad module) before anything runs.
 */
export async function planMigrations(files: readonly MigrationFile[], parser: SqlParser): Promise<PlannedMigration[]> {
  const refusals: Refusal[] = [];
  const plans: PlannedMigration[] = [];
  for (const file of files) {
    try {
      plans.push(file.language === "typescript" ? { file, statements: [], module: await loadTypeScriptMigration(file) } : planSql(file, parser, refusals));
    } catch (error) {
      if (!(error instanceof RefusedError)) throw error;
      refusals.push(...error.refusals);
    }
  }
  if (refusals.length > 0) throw new RefusedError(refusals);
  return plans;
}

function planSql(file: MigrationFile, parser: SqlParser, refusals: Refusal[]): PlannedMigration {
  const statements = parser.statements(file);
  if (statements.length === 0) {
    refusals.push({ check: "file", file: file.fileName, message: "the file has no SQL statements (only comments)", resolution: "write the migration's SQL in it, or delete it" });
  }
  if (file.transactional) refusals.push(...transactionControlRefusals(file, statements));
  return { file, statements, module: undefined };
}

export interface RunnerDeps {
  /** The session that runs migrations (not the one holding the lock). */
  readonly sql: Sql;
  readonly lock: HeldLock;
  readonly storage: MigrationStorage;
  readonly logger: Logger;
  /** Told which migration is running, so server notices can be attributed to it. */
  readonly onMigration: (name: string | undefined) => void;
}

export async function applyMigrations(plans: readonly PlannedMigration[], deps: RunnerDeps): Promise<number> {
  let context: MigrationContext | undefined;
  const umzug = new Umzug<MigrationContext>({
    migrations: plans.map((plan) => ({
      name: plan.file.name,
      path: plan.file.path,
      up: ({ context: { sql } }) => executeMigration(sql, plan, deps.lock),
    })),
    storage: deps.storage,
    context: () => context!,
    logger: undefined,
  });
  // State was read under the lock, so the plan is exact: ALLOW skips Umzug's re-read of it per migration.
  const runOne = (name: string) => umzug.up({ migrations: [name], rerun: "ALLOW" }).catch((error: unknown) => Promise.reject(unwrapUmzug(error)));

  for (const plan of plans) {
    const { file } = plan;
    deps.onMigration(file.name);
    const mode = file.transactional ? "in one transaction" : "without a transaction";
    deps.logger.info("migration_started", `applying ${file.fileName} (${describeWork(plan)}, ${mode})`, migrationAttributes(file));
    const startedAt = performance.now();
    const run: RunInContext = (sql) => {
      context = { sql, migration: file, startedAt };
      return runOne(file.name);
    };
    await (file.transactional ? inLockedTransaction(deps, run) : applyWithoutTransaction(file, deps, run)).catch((error: unknown) =>
      Promise.reject(explainFailure(error, `applying ${file.fileName}`)),
    );
    const durationMs = Math.round(performance.now() - startedAt);
    deps.logger.info("migration_applied", `applied ${file.fileName} in ${formatDuration(durationMs)}`, { ...migrationAttributes(file), duration_ms: durationMs });
  }
  deps.onMigration(undefined);
  return plans.length;
}

type RunInContext = (sql: Queryable) => Promise<unknown>;

/** Runs `body` in one transaction that commits only while the migration lock is still held. */
export async function inLockedTransaction(session: { readonly sql: Sql; readonly lock: HeldLock }, body: (tx: TransactionSql) => Promise<unknown>): Promise<void> {
  await session.sql.begin(async (tx) => {
    await body(tx);
    await session.lock.assertHeld(tx);
  });
}

/** What a planned migration runs, for the log: "5 statements" or "TypeScript up()". */
export function describeWork(plan: PlannedMigration): string {
  return plan.module ? "TypeScript up()" : plural(plan.statements.length, "statement");
}

async function applyWithoutTransaction(file: MigrationFile, deps: RunnerDeps, run: RunInContext): Promise<void> {
  await deps.lock.assertHeld(deps.sql);
  await deps.storage.recordRunning(deps.sql, file);
  try {
    await run(deps.sql);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // If this write fails too (connection gone), the row still says "running": the next run refuses just the same.
    await deps.storage.recordFailed(deps.sql, file, message).catch(() => undefined);
    throw error;
  }
}

/**
 * The job's own error for a failure while `doing` something to a migration. A failure outside any
 * statement (a lost connection at COMMIT, say) still names the migration.
 */
export function explainFailure(error: unknown, doing: string, afterwards = ""): MigrateError {
  const original = unwrapUmzug(error);
  if (original instanceof MigrateError) return original;
  const message = original instanceof Error ? original.message : String(original);
  return new RunAbortedError(`while ${doing}: ${message} (${errorCode(original)})${afterwards}; check the outcome with ${COMMAND} status`, { cause: original });
}

/** Umzug wraps what a migration throws in its own MigrationError; the job reports the original. */
export function unwrapUmzug(error: unknown): unknown {
  return error instanceof UmzugMigrationError ? error.cause : error;
}

export function migrationAttributes(file: MigrationFile): Record<string, unknown> {
  return { migration: file.name, version: file.version, file: file.fileName };
}

/**
 * Runs one planned migration's SQL or `up` through `sql` (its transaction, or the session for a
 * no-transaction file). Records nothing: the caller decides what commits.
 */
export async function executeMigration(sql: Queryable, plan: PlannedMigration, lock: HeldLock): Promise<void> {
  const { file, statements, module } = plan;
  if (module) return runModuleFunction(sql as TransactionSql, file, module.up, rolledBack(file));
  await runStatements(sql, file, statements, {
    // Without a transaction each statement commits on its own: never start one without the lock.
    beforeEach: file.transactional ? undefined : (index) => (index > 0 ? lock.assertHeld(sql) : Promise.resolve()),
    outcome: (index) =>
      file.transactional
        ? rolledBack(file)
        : `statements 1-${index} of ${statements.length} ran before it and stay applied (no transaction); the migration is ` +
          `recorded as failed and later runs refuse until you undo it and run ${COMMAND} resolve ${file.version} --rolled-back, ` +
          `or finish it by hand and run ${COMMAND} resolve ${file.version} --applied`,
  });
}

/** Runs a TypeScript migration's `up` or `down`; a failure is located in the module from its stack. */
export async function runModuleFunction(tx: TransactionSql, file: MigrationFile, fn: MigrationFunction, outcome: string): Promise<void> {
  try {
    await fn(tx);
  } catch (error) {
    throw new MigrationFailedError(locateInModule(file, error), serverError(error), outcome, { cause: error });
  }
}

export interface StatementOptions {
  /** What the failure message says happened, given the index of the failing statement. */
  readonly outcome: (failedIndex: number) => string;
  readonly beforeEach?: ((index: number) => Promise<void>) | undefined;
}

/** Runs parsed statements in order; a failure names the file, line and column of the statement. */
export async function runStatements(sql: Queryable, source: SqlSource, statements: readonly Statement[], options: StatementOptions): Promise<void> {
  for (const [index, statement] of statements.entries()) {
    await options.beforeEach?.(index);
    try {
      await sql.unsafe(statement.text).simple();
    } catch (error) {
      const server = serverError(error);
      throw new MigrationFailedError(locateInFile(source, statement, server.position), server, options.outcome(index), { cause: error });
    }
  }
}

function rolledBack(file: MigrationFile): string {
  return `the transaction was rolled back: nothing from ${file.fileName} was applied`;
}

function serverError(error: unknown): ServerError & { position: number | undefined } {
  const fields = error as { message?: string; detail?: string; hint?: string; where?: string; position?: string };
  const position = fields.position ? Number(fields.position) : undefined;
  return {
    code: errorCode(error),
    message: fields.message ?? String(error),
    position,
    ...(fields.detail ? { detail: fields.detail } : {}),
    ...(fields.hint ? { hint: fields.hint } : {}),
    ...(fields.where ? { where: fields.where } : {}),
  };
}


