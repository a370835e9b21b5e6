/**
 * Applies planned migrations through Umzug, one at a time. A transactional file runs inside one
 * transaction together with its tracking row; a no-transaction file runs statement by statement
 * and is marked running, then applied or failed, so a failure part-way is never forgotten.
 */
import { loadUmzug, unwrapUmzug } from "./umzug.ts";
import type { Sql, TransactionSql } from "postgres";
import { CancelledError, LockContentionError, MigrateError, MigrationFailedError, RefusedError, RunAbortedError, TransactionEscapedError, type LockAttempt, type Refusal, type ServerError } from "../shared/errors.ts";
import { cancelReasonOf, checkpoints, pause, throwIfCancelled } from "../shared/cancellation.ts";
import { describeBlockers, watchLockWaits, type WatchedBackend } from "../database/lock-waits.ts";
import { concurrentIndexTargets, findInvalidIndexes } from "../database/invalid-indexes.ts";
import { errorCode, RESTORE_IN_TRANSACTION, type Queryable, type Session } from "../database/database.ts";
import { postgresDuration } from "../shared/duration.ts";
import { plural } from "../shared/table-format.ts";
import { locateInFile, openTransactionRefusals, transactionControlRefusals, type SqlParser, type Statement } from "../files/sql-statements.ts";
import { loadTypeScriptMigration, locateInModule, type MigrationFunction, type TypeScriptMigration } from "../files/typescript-migrations.ts";
import type { HeldLock } from "../database/lock.ts";
import type { RunEvents } from "./run-events.ts";
import type { Logger } from "../shared/log.ts";
import type { MigrationFile, SqlSource } from "../files/migration-files.ts";
import type { MigrationPolicy } from "../shared/config.ts";
import type { MigrationContext, MigrationStorage } from "../database/storage.ts";
import { fixCommand } from "../shared/invocation.ts";
import { recoveryResolution } from "./migration-state.ts";
import { adviseRecovery } from "./recovery.ts";
import { serverCondition } from "../database/environment-errors.ts";
import { inlined } from "../database/inline-values.ts";
import { Pipeline } from "../database/pipeline.ts";

/** A pending file, checked and ready to run. */
export interface PlannedMigration {
  readonly file: MigrationFile;
  /** The SQL statements, in order; none for a TypeScript migration. */
  readonly statements: readonly Statement[];
  /** The loaded module of a TypeScript migration. */
  readonly module: TypeScriptMigration | undefined;
}

/**
 * Parses every SQL file and loads every TypeScript one, refusing all problems together (size,
 * syntax, transaction control in a transactional file, an empty file, a bad module) before
 * anything runs. Between files it stops if `signal` (the run's cancellation) is aborted.
 */
export async function planMigrations(files: readonly MigrationFile[], parser: SqlParser, signal?: AbortSignal): Promise<PlannedMigration[]> {
  const refusals: Refusal[] = [];
  const plans: PlannedMigration[] = [];
  const checkpoint = checkpoints(signal, "planning the migration files");
  for (const file of files) {
    await checkpoint();
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
  refusals.push(...(file.transactional ? transactionControlRefusals(file, statements) : openTransactionRefusals(file, statements)));
  return { file, statements, module: undefined };
}

export interface RunnerDeps {
  /** The SQL parser, for choosing the repair of a file that failed part-way. */
  readonly loadParser: () => Promise<SqlParser>;
  /** The session that runs migrations (not the one holding the lock): `work.sql`. */
  readonly sql: Sql;
  readonly work: Session;
  readonly lock: HeldLock;
  /** The lock's session, free to watch the migration session (whose pid is `workPid`) for lock waits. */
  readonly monitor: WatchedBackend;
  readonly storage: MigrationStorage;
  readonly logger: Logger;
  readonly policy: MigrationPolicy;
  /** Aborted by SIGTERM, SIGINT or the run's time budget. */
  readonly signal: AbortSignal;
  /** Where the run's events go: the log, the run history, and the attribution of notices. */
  readonly events: RunEvents;
}

/** lock_not_available (lock_timeout expired) and deadlock_detected: another session's doing, worth another try. */
const LOCK_CONTENTION = new Set(["55P03", "40P01"]);
/** Long enough that a quick migration costs no watching query; far shorter than any sensible lock_timeout. */
const BLOCKER_WATCH_DELAY_MS = 250;

/** One migration as the run's Umzug instance knows it: its file, what applies it and, when planned, what undoes it. */
export interface MigrationStep {
  readonly file: MigrationFile;
  /** Runs the migration through `sql`; given a pipeline, only sends it there (see inPipelinedTransaction). */
  readonly up: (sql: Queryable, pipeline?: Pipeline) => Promise<void>;
  readonly down?: (sql: Queryable) => Promise<void>;
}

/** Applies or reverts one migration through `sql`, Umzug checking and recording it there (see createMigrator). */
export interface Migrator {
  apply(file: MigrationFile, sql: Queryable, startedAt: number, pipeline?: Pipeline): Promise<void>;
  revert(file: MigrationFile, sql: Queryable, startedAt: number): Promise<void>;
}

/**
 * The run's one Umzug instance, over the job's storage. Umzug orders the migrations, checks with
 * storage.executed() that a migration is not applied yet (or is, to revert it), runs it, and then
 * records it with storage.logMigration (or unlogMigration). What it cannot carry is the per-file
 * transaction: it calls the migration and the storage as two separate steps, so a crash between
 * them would leave the SQL applied and unrecorded. Hence each call here is for one migration,
 * made inside the job's own transaction (inLockedTransaction): the context Umzug hands to both
 * steps is that transaction, so the SQL and its record commit together or not at all.
 */
export async function createMigrator(steps: readonly MigrationStep[], storage: MigrationStorage): Promise<Migrator> {
  const { Umzug } = await loadUmzug();
  let context: MigrationContext | undefined;
  const umzug = new Umzug<MigrationContext>({
    migrations: steps.map(({ file, up, down }) => ({
      name: file.name,
      path: file.path,
      up: ({ context: { sql, pipeline } }) => up(sql, pipeline),
      ...(down ? { down: ({ context: { sql } }: { context: MigrationContext }) => down(sql) } : {}),
    })),
    storage,
    context: () => context!,
    logger: undefined,
  });
  const step = async (direction: "up" | "down", file: MigrationFile, sql: Queryable, startedAt: number, pipeline?: Pipeline) => {
    context = { sql, migration: file, startedAt, pipeline };
    const options = { migrations: [file.name] };
    await (direction === "up" ? umzug.up(options) : umzug.down(options)).catch((error: unknown) => Promise.reject(unwrapUmzug(error)));
  };
  return {
    apply: (file, sql, startedAt, pipeline) => step("up", file, sql, startedAt, pipeline),
    revert: (file, sql, startedAt) => step("down", file, sql, startedAt),
  };
}

/** How up applies a planned file: its SQL or up(), then the session settled before the job writes its record. */
export function applyStep(plan: PlannedMigration, run: Pick<RunnerDeps, "lock" | "signal" | "work">): MigrationStep {
  return {
    file: plan.file,
    up: async (sql, pipeline) => {
      if (pipeline) return sendMigration(pipeline, sql, plan);
      await executeMigration(sql, plan, run.lock, run.signal);
      await settleForJobWrite(run.work, sql, plan.file);
    },
  };
}

export async function applyMigrations(plans: readonly PlannedMigration[], deps: RunnerDeps): Promise<number> {
  if (plans.length === 0) return 0;
  const migrator = await createMigrator(plans.map((plan) => applyStep(plan, deps)), deps.storage);
  for (const plan of plans) await applyOne(plan, deps, migrator);
  // Only after the last one: a failure keeps naming the file it happened in.
  await deps.events.emit({ type: "files_done" });
  return plans.length;
}

/** One planned file, in its transaction (retried on lock contention) or without one. */
async function applyOne(plan: PlannedMigration, deps: RunnerDeps, migrator: Migrator): Promise<void> {
  const { file } = plan;
  throwIfCancelled(deps.signal, `applying ${file.fileName}`);
  await deps.events.emit({ type: "file_started", file, action: "apply", work: describeWork(plan) });
  const startedAt = performance.now();
  await retryOnLockContention(plan, deps, attemptFor(plan, deps, migrator, startedAt)).catch(async (error: unknown) => {
    throw await recordIfEscaped(explainFailure(error, `applying ${file.fileName}`), file, deps);
  });
  await deps.events.emit({ type: "file_done", file, action: "apply", durationMs: Math.round(performance.now() - startedAt) });
}

type RunInContext = (sql: Queryable) => Promise<unknown>;

/** One attempt at `plan`: in one pipeline, in sql.begin, or without a transaction (see canPipeline). */
function attemptFor(plan: PlannedMigration, deps: RunnerDeps, migrator: Migrator, startedAt: number): () => Promise<void> {
  const { file } = plan;
  const timeouts = fileTimeouts(file, deps.policy);
  if (!file.transactional) return () => applyWithoutTransaction(plan, deps, (sql) => migrator.apply(file, sql, startedAt));
  if (canPipeline(plan)) {
    return () =>
      inPipelinedTransaction(deps, (sql, pipeline) => {
        const setting = timeoutsStatement(sql, timeouts, "transaction");
        if (setting) pipeline.send(setting);
        return migrator.apply(file, sql, startedAt, pipeline);
      });
  }
  return () =>
    inLockedTransaction(deps, async (tx) => {
      await timeoutsStatement(tx, timeouts, "transaction");
      return migrator.apply(file, tx, startedAt);
    });
}

/**
 * Runs `body` in one transaction on the migration session that commits only while the migration
 * lock is still held, then resets the session, so the next file starts where every file starts.
 */
export async function inLockedTransaction(run: { readonly work: Session; readonly lock: HeldLock }, body: (tx: TransactionSql) => Promise<unknown>): Promise<void> {
  await run.work.sql.begin(async (tx) => {
    await body(tx);
    await run.lock.assertHeld(tx);
  });
  await run.work.reset();
}

/**
 * A transactional SQL file of up to one batch of statements goes in one pipeline. A larger one is
 * sent batch by batch inside sql.begin, so that a cancellation is heard between batches; a
 * TypeScript migration needs a transaction object to call.
 */
function canPipeline(plan: PlannedMigration): boolean {
  return plan.file.transactional && !plan.module && plan.statements.length <= PIPELINE_BATCH;
}

/**
 * One migration in one round trip: BEGIN, what `body` sends (the file's statements, the settings
 * and role put back, its record), the lock check, COMMIT and the session's reset, sent together on
 * the migration session. If any of them fails, PostgreSQL refuses the ones after it in the
 * transaction and the COMMIT rolls back, so the migration and its record are applied together or
 * not at all, as in inLockedTransaction; the first failure, in the order sent, is what is thrown.
 */
async function inPipelinedTransaction(run: { readonly work: Session; readonly lock: HeldLock }, body: (sql: Queryable, pipeline: Pipeline) => Promise<void>): Promise<void> {
  const { sql } = run.work;
  const pipeline = new Pipeline();
  pipeline.send(sql`begin`);
  await body(sql, pipeline);
  run.lock.sendHeldCheck(pipeline, sql);
  pipeline.send(sql`commit`);
  pipeline.send(sql`discard all`);
  await pipeline.settle();
}

/** A file's statements, then its settings and role put back before the job's record (see restoreInTransaction). */
function sendMigration(pipeline: Pipeline, sql: Queryable, plan: PlannedMigration): void {
  const { file, statements } = plan;
  for (const statement of statements) {
    pipeline.send(sql.unsafe(statement.text).simple(), (error) => statementFailure(file, statement, error, rolledBack(file)));
  }
  pipeline.send(sql.unsafe(RESTORE_IN_TRANSACTION).simple());
}

/**
 * Between a file's own SQL and the job's write of its record through the same connection: in a
 * transaction, the file's settings and role are undone for the rest of it; without one, the
 * session is reset (which fails if the file left a transaction open, so its record is never
 * written inside that transaction).
 */
function settleForJobWrite(work: Session, sql: Queryable, file: { readonly transactional: boolean }): Promise<void> {
  return file.transactional ? work.restoreInTransaction(sql) : work.reset();
}

/**
 * Runs one attempt at a migration, and again while it loses to other sessions' locks (55P03 after
 * lock_timeout, or 40P01), with exponential backoff and jitter. Each lost attempt is logged with
 * the sessions that blocked it, seen from the lock's session while it waited. A no-transaction
 * file is never retried: its earlier statements have committed.
 */
async function retryOnLockContention(plan: PlannedMigration, deps: RunnerDeps, attempt: () => Promise<void>): Promise<void> {
  const { file } = plan;
  const lost: LockAttempt[] = [];
  for (let number = 1; ; number++) {
    // Start watching before this file's lock_timeout can expire, so the blockers are seen.
    const lockTimeoutMs = file.lockTimeoutMs ?? deps.policy.lockTimeoutMs;
    const watcher = watchLockWaits(deps.monitor, { startAfterMs: Math.min(BLOCKER_WATCH_DELAY_MS, lockTimeoutMs / 2) });
    try {
      await attempt();
      await watcher.stop();
      return;
    } catch (error) {
      const waits = await watcher.stop().catch(() => []);
      const code = failureCode(error);
      if (!file.transactional || !LOCK_CONTENTION.has(code) || deps.signal.aborted) throw error;
      const blocked = { attempt: number, code, blockers: describeBlockers(waits.at(-1)?.blocking ?? []) };
      lost.push(blocked);
      const attempts = deps.policy.lockAttempts;
      if (number >= attempts) {
        await deps.events.emit({ type: "attempt_lost", file, attempt: blocked, attempts });
        throw new LockContentionError((error as MigrationFailedError).location, lost, { cause: error });
      }
      const delay = backoffMs(number, deps.policy);
      await deps.events.emit({ type: "attempt_lost", file, attempt: blocked, attempts, retryInMs: delay });
      await pause(delay, deps.signal);
      throwIfCancelled(deps.signal, `retrying ${file.fileName}`);
    }
  }
}

function failureCode(error: unknown): string {
  return error instanceof MigrationFailedError ? error.server.code : errorCode(error);
}

/** Doubling from the first delay up to the maximum, each scaled by a random 50-100% so retrying runs spread out. */
function backoffMs(attempt: number, policy: MigrationPolicy): number {
  const ceiling = Math.min(policy.retryMaxDelayMs, policy.retryFirstDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling * (0.5 + Math.random() * 0.5));
}

type Timeouts = Partial<Record<"lock_timeout" | "statement_timeout", string>>;

/** The settings a file asks for beyond the session's defaults. */
function fileTimeouts(file: MigrationFile, policy: MigrationPolicy): Timeouts {
  return {
    ...(file.lockTimeoutMs !== undefined && file.lockTimeoutMs !== policy.lockTimeoutMs ? { lock_timeout: postgresDuration(file.lockTimeoutMs) } : {}),
    ...(file.statementTimeoutMs !== undefined && file.statementTimeoutMs !== policy.statementTimeoutMs
      ? { statement_timeout: postgresDuration(file.statementTimeoutMs) }
      : {}),
  };
}

/** SET LOCAL inside a migration's transaction, or SET on the session for a no-transaction file; none when nothing differs. */
function timeoutsStatement(sql: Queryable, timeouts: Timeouts, scope: "transaction" | "session") {
  if (Object.keys(timeouts).length === 0) return undefined;
  return inlined(sql)`select set_config(key, value, ${scope === "transaction"}) from json_each_text(${JSON.stringify(timeouts)}::text::json)`;
}

/** What a planned migration runs, for the log: "5 statements" or "TypeScript up()". */
export function describeWork(plan: PlannedMigration): string {
  return plan.module ? "TypeScript up()" : plural(plan.statements.length, "statement");
}

async function applyWithoutTransaction(plan: PlannedMigration, deps: RunnerDeps, run: RunInContext): Promise<void> {
  const { file } = plan;
  await deps.lock.assertHeld(deps.sql);
  await deps.storage.recordRunning(deps.sql, file);
  const overrides = fileTimeouts(file, deps.policy);
  try {
    // The reset after the file's statements (settleForJobWrite) puts the session's defaults back.
    await timeoutsStatement(deps.sql, overrides, "session");
    await run(deps.sql);
  } catch (error) {
    throw await recordPartWayFailure(error, plan, deps);
  }
}

/**
 * A no-transaction file failed part-way: its row becomes `failed`, through the migration session or,
 * if that one is gone, the lock's. The message then says what the record really says, and the one
 * repair that what the file left calls for.
 */
async function recordPartWayFailure(error: unknown, plan: PlannedMigration, deps: RunnerDeps): Promise<unknown> {
  const { file } = plan;
  const sql = deps.work.lost ? deps.monitor.sql : deps.sql;
  const failure = await nameInvalidIndexes(error, plan, sql);
  const message = failure instanceof Error ? failure.message : String(failure);
  const recorded = await deps.storage.recordFailed(sql, file, message).then(
    () => "it is recorded as failed",
    (why: unknown) => `its tracking row still says running, since recording the failure failed too (${why instanceof Error ? why.message : String(why)})`,
  );
  if (!(failure instanceof MigrationFailedError)) return failure;
  const advice = await deps.loadParser().then((parser) => adviseRecovery(sql, file, parser)).catch(() => undefined);
  const next = `${recorded}, and later runs refuse until it is resolved: ${recoveryResolution(file.version, advice)}`;
  return new MigrationFailedError(failure.location, failure.server, `${failure.outcome}; ${next}`, { cause: failure.cause });
}

/**
 * A migration whose work escaped its transaction is recorded as failed, as a no-transaction file
 * that failed part-way is: later runs refuse until resolve says what happened to it.
 */
async function recordIfEscaped(error: MigrateError, file: MigrationFile, deps: RunnerDeps): Promise<MigrateError> {
  if (!(error instanceof TransactionEscapedError)) return error;
  const recorded = await deps.work
    .reset()
    .then(() => deps.storage.recordFailed(deps.sql, file, error.message))
    .then(
      () => `; it is recorded as failed, and later runs refuse until you check what it left and run ${fixCommand(`resolve ${file.version} --applied`)} or ${fixCommand(`resolve ${file.version} --rolled-back`)}`,
      (failure: unknown) => `; recording it as failed failed too (${failure instanceof Error ? failure.message : String(failure)}): check what it left before the next run`,
    );
  return new TransactionEscapedError(error.location, error.server, `${error.outcome}${recorded}`, { cause: error.cause });
}

/** A failed concurrent index build leaves an invalid index: the failure (and so the tracking row) names it. */
async function nameInvalidIndexes(error: unknown, plan: PlannedMigration, sql: Queryable): Promise<unknown> {
  if (!(error instanceof MigrationFailedError)) return error;
  const invalid = await findInvalidIndexes(sql, concurrentIndexTargets(plan.statements)).catch(() => []);
  if (invalid.length === 0) return error;
  const left = `it left the invalid index${invalid.length === 1 ? "" : "es"} ${invalid.join(", ")} behind`;
  return new MigrationFailedError(error.location, error.server, `${error.outcome}; ${left}`, { cause: error.cause });
}

/**
 * The job's own error for a failure while `doing` something to a migration. A failure outside any
 * statement (a lost connection at COMMIT, say) still names the migration; a condition of the
 * environment met by the job's own statements (a lock on the tracking table, a full disk) says what it is.
 */
export function explainFailure(error: unknown, doing: string, afterwards = ""): MigrateError {
  const original = unwrapUmzug(error);
  if (original instanceof MigrateError) return original;
  const condition = serverCondition(original, { doing, afterwards });
  if (condition) return condition;
  const message = original instanceof Error ? original.message : String(original);
  return new RunAbortedError(`while ${doing}: ${message} (${errorCode(original)})${afterwards}; check the outcome with ${fixCommand(`status`)}`, { cause: original });
}


/**
 * Runs one planned migration's SQL or `up` through `sql` (its transaction, or the session for a
 * no-transaction file). Records nothing: the caller decides what commits.
 */
async function executeMigration(sql: Queryable, plan: PlannedMigration, lock: HeldLock, signal?: AbortSignal): Promise<void> {
  const { file, statements, module } = plan;
  if (module) return runModuleFunction(sql as TransactionSql, file, module.up, rolledBack(file));
  await runStatements(sql, file, statements, {
    pipelined: file.transactional,
    signal,
    // Without a transaction each statement commits on its own: never start one without the lock.
    beforeEach: file.transactional ? undefined : (index) => (index > 0 ? lock.assertHeld(sql) : Promise.resolve()),
    outcome: (index) => (file.transactional ? rolledBack(file) : ranBefore(index, statements.length)),
  });
}

/**
 * Runs a TypeScript migration's `up` or `down` in the job's transaction; a failure is located in
 * the module from its stack. The function gets the transaction's `sql`, and nothing stops it from
 * sending COMMIT or ROLLBACK through it: the transaction id, asked for before the function's first
 * query (in the same round trip), tells afterwards whether the job's transaction is still the one
 * open, so such an escape is reported as what it is rather than as a clean rollback.
 */
export async function runModuleFunction(tx: TransactionSql, file: MigrationFile, fn: MigrationFunction, outcome: string): Promise<void> {
  const transaction = currentTransactionId(tx);
  try {
    await fn(tx);
  } catch (error) {
    if (await transactionEnded(tx, await transaction)) throw escaped(file, error);
    throw new MigrationFailedError(locateInModule(file, error), serverError(error), outcome, { cause: error });
  }
  if (await transactionEnded(tx, await transaction)) throw escaped(file, undefined);
}

async function currentTransactionId(tx: TransactionSql): Promise<string> {
  const [row] = await tx<{ xid: string }[]>`select pg_current_xact_id()::text as xid`;
  return row!.xid;
}

/** in_failed_sql_transaction: the job's transaction is still open (aborted by the failure), not ended. */
const IN_FAILED_TRANSACTION = "25P02";

async function transactionEnded(tx: TransactionSql, transactionId: string): Promise<boolean> {
  try {
    const [row] = await tx<{ xid: string | null }[]>`select pg_current_xact_id_if_assigned()::text as xid`;
    return row!.xid !== transactionId;
  } catch (error) {
    if (errorCode(error) === IN_FAILED_TRANSACTION) return false;
    throw error;
  }
}

function escaped(file: MigrationFile, error: unknown): TransactionEscapedError {
  const then = error === undefined ? "" : `, then failed: ${error instanceof Error ? error.message : String(error)}`;
  return new TransactionEscapedError(
    locateInModule(file, error),
    { code: "25000", message: `${file.fileName} ended the job's transaction itself (a COMMIT or ROLLBACK through its sql)${then}` },
    "part of its work was committed outside the job's transaction, where the job cannot roll it back",
    { cause: error },
  );
}

export interface StatementOptions {
  /** What the failure message says happened, given the index of the failing statement. */
  readonly outcome: (failedIndex: number) => string;
  readonly beforeEach?: ((index: number) => Promise<void>) | undefined;
  /**
   * Inside a transaction, send the statements PIPELINE_BATCH at a time instead of waiting for each:
   * one round trip per batch. Once one fails, PostgreSQL refuses the rest (25P02), so the first
   * failure in order is the one to report. Never without a transaction, where a statement after a
   * failure would run.
   */
  readonly pipelined?: boolean;
  /**
   * The run's cancellation: no batch is sent once it is aborted. Cancelling the running statement
   * on the server is not enough for a large file, whose session sits idle between batches.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Runs parsed statements in order; a failure names the file, line and column of the statement. */
export async function runStatements(sql: Queryable, source: SqlSource, statements: readonly Statement[], options: StatementOptions): Promise<void> {
  if (options.pipelined) return runPipelined(sql, source, statements, options);
  for (const [index, statement] of statements.entries()) {
    await options.beforeEach?.(index);
    try {
      await sql.unsafe(statement.text).simple();
    } catch (error) {
      throw statementFailure(source, statement, error, options.outcome(index));
    }
  }
}

/**
 * Statements sent together before waiting for their results. A file of tens of thousands is sent
 * in batches, so queueing them never holds up the event loop (SIGTERM is heard within
 * milliseconds), and a cancelled or failed file leaves at most one batch for PostgreSQL to refuse.
 */
const PIPELINE_BATCH = 1000;

async function runPipelined(sql: Queryable, source: SqlSource, statements: readonly Statement[], options: StatementOptions): Promise<void> {
  for (let first = 0; first < statements.length; first += PIPELINE_BATCH) {
    const reason = options.signal && cancelReasonOf(options.signal);
    if (reason) throw new CancelledError(reason, `applying ${source.fileName}`);
    const batch = statements.slice(first, first + PIPELINE_BATCH);
    const results = await Promise.allSettled(batch.map((statement) => sql.unsafe(statement.text).simple()));
    const failed = results.findIndex((result) => result.status === "rejected");
    if (failed >= 0) throw statementFailure(source, batch[failed]!, (results[failed] as PromiseRejectedResult).reason, options.outcome(first + failed));
  }
}

function statementFailure(source: SqlSource, statement: Statement, error: unknown, outcome: string): MigrationFailedError {
  const server = serverError(error);
  return new MigrationFailedError(locateInFile(source, statement, server.position), server, outcome, { cause: error });
}

/** Without a transaction, what had committed before the statement that failed. */
function ranBefore(failedIndex: number, total: number): string {
  if (failedIndex === 0) return `it was the first of ${total} statements, so none had run before it`;
  const ran = failedIndex === 1 ? "statement 1" : `statements 1-${failedIndex}`;
  return `${ran} of ${total} ran before it and stay${failedIndex === 1 ? "s" : ""} applied (no transaction)`;
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


