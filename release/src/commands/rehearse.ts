/**
 * `rehearse`: runs every pending transactional migration for real, in one transaction on the
 * migration session, and then rolls all of it back, tracking rows included. It reports what `up`
 * would meet: each migration's duration, the error with file:line:column and SQLSTATE, and every
 * wait on a lock with the sessions that caused it.
 *
 * What it selects and refuses is exactly what `up` selects and refuses. It never commits: the
 * transaction's body always ends by throwing, so postgres.js can only roll it back.
 */
import type { TransactionSql } from "postgres";
import { ExitCode, MigrateError, MigrationFailedError, RefusedError, RunAbortedError, failureDocument, failureLines } from "../shared/errors.ts";
import { errorCode } from "../database/database.ts";
import { classify, planUp, type UpPlan } from "../run/migration-state.ts";
import { readRecordedState } from "../run/recorded-state.ts";
import { applyStep, createMigrator, describeWork, planMigrations, type Migrator, type PlannedMigration } from "../run/runner.ts";
import { migrationAttributes } from "../run/run-events.ts";
import { warnOutOfOrder } from "./up.ts";
import { enforceLintGate } from "../lint/lint.ts";
import { describeBlockers, watchLockWaits, type AwaitedLock, type Blocker, type LockWait } from "../database/lock-waits.ts";
import { formatDuration } from "../shared/duration.ts";
import type { Logger } from "../shared/log.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import { withMigrationWork, type LockedRun, type LockedWork } from "./context.ts";

export interface RehearseOptions {
  /** --json: one JSON document on stdout instead of the text. */
  readonly json: boolean;
}

export type RehearsalOutcome = "passed" | "failed" | "not_rehearsable" | "not_run" | "held";

/** What the rehearsal found for one migration file. */
export interface RehearsedMigration {
  readonly file: MigrationFile;
  readonly outcome: RehearsalOutcome;
  /** Set for passed and failed: the migration's SQL and its tracking row, as up would time them. */
  readonly durationMs: number | null;
  readonly error: MigrationFailedError | null;
  readonly lockWaits: readonly LockWait[];
}

export async function rehearse(run: LockedRun, options: RehearseOptions): Promise<ExitCode> {
  const started = performance.now();
  const state = await planAsUpWould(run);
  await enforceLintGate(state.pending, run.lint, run.logger);
  const plans = state.pending.length > 0 ? await planMigrations(state.pending, await run.loadParser(), run.signal) : [];
  const heldFiles = state.held.map((file) => held(file, run.logger));
  warnOutOfOrder(state, run.logger);

  const rehearsed = plans.length > 0 ? await rehearseThenRollBack(await withMigrationWork(run), plans) : [];
  const report = [...rehearsed, ...heldFiles].sort((a, b) => a.file.version - b.file.version);
  const durationMs = Math.round(performance.now() - started);
  run.writeDocument(options.json ? jsonDocument(report, durationMs) : textDocument(report));

  const counts = countOutcomes(report);
  run.logger.info("run_finished", summarize(counts, durationMs), { ...counts, rolled_back: true, duration_ms: durationMs });
  return counts.failed > 0 ? ExitCode.migrationFailed : ExitCode.success;
}

/** The same state, order check and refusals as `up` (without --allow-out-of-order). */
async function planAsUpWould(run: LockedRun): Promise<UpPlan> {
  const { records, facts } = await readRecordedState(run.sql, run);
  const state = planUp(classify(run.files, records, { allowOutOfOrder: false, ...facts }));
  if (state.refusals.length > 0) throw new RefusedError(state.refusals);
  return state;
}

/** Thrown to end the transaction's body, so the only way out of it is ROLLBACK. */
class RollBackRehearsal extends Error {}

async function rehearseThenRollBack(run: LockedWork, plans: readonly PlannedMigration[]): Promise<RehearsedMigration[]> {
  let rehearsed: RehearsedMigration[] = [];
  try {
    await run.sql.begin(async (tx) => {
      rehearsed = await rehearseInTransaction(tx, plans, run);
      throw new RollBackRehearsal();
    });
  } catch (error) {
    if (!(error instanceof RollBackRehearsal)) throw stopped(error);
  } finally {
    await run.events.emit({ type: "files_done" });
  }
  return rehearsed;
}

/** A lost connection, say: nothing was committed, and the server rolls back what was left open. */
function stopped(error: unknown): MigrateError {
  if (error instanceof MigrateError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RunAbortedError(`the rehearsal stopped: ${message} (${errorCode(error)}); it never commits, so nothing it ran was kept`, { cause: error });
}

/** Up to the first failure: what follows it may depend on what failed, so it is not run. */
async function rehearseInTransaction(tx: TransactionSql, plans: readonly PlannedMigration[], run: LockedWork): Promise<RehearsedMigration[]> {
  await run.storage.ensureTable(tx);
  const migrator = await createMigrator(plans.map((plan) => applyStep(plan, run)), run.storage);
  const rehearsed: RehearsedMigration[] = [];
  let failed: MigrationFile | undefined;
  for (const plan of plans) {
    if (!plan.file.transactional) {
      rehearsed.push(notRehearsable(plan.file, run.logger));
    } else if (failed) {
      rehearsed.push(notRun(plan.file, failed, run.logger));
    } else {
      const result = await rehearseOne(tx, plan, run, migrator);
      rehearsed.push(result);
      if (result.outcome === "failed") failed = plan.file;
    }
  }
  return rehearsed;
}

type Settled = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

async function rehearseOne(tx: TransactionSql, plan: PlannedMigration, run: LockedWork, migrator: Migrator): Promise<RehearsedMigration> {
  const { file } = plan;
  const { logger } = run;
  await run.events.emit({ type: "file_started", file, action: "rehearse", work: describeWork(plan) });
  const watcher = watchLockWaits(run.monitor, { onWaitStarted: (lock, blocking) => logWaitStarted(file, lock, blocking, logger) });
  const startedAt = performance.now();
  const settled: Settled = await runAndRecord(tx, plan, run, migrator, startedAt).then(
    () => ({ ok: true }),
    (error: unknown) => ({ ok: false, error }),
  );
  const durationMs = Math.round(performance.now() - startedAt);
  const lockWaits = await watcher.stop();
  const error = migrationFailure(settled);
  const attributes = { ...migrationAttributes(file), duration_ms: durationMs, lock_waits: lockWaits.length, lock_waited_ms: totalWaitedMs(lockWaits) };
  if (error) logger.error("migration_failed", error.message, { ...attributes, ...error.attributes() });
  else logger.info("migration_rehearsed", `rehearsed ${file.fileName} in ${formatDuration(durationMs)}${describeWaits(lockWaits)} (to be rolled back)`, attributes);
  return { file, outcome: error ? "failed" : "passed", durationMs, error, lockWaits };
}

/** A failure of the migration's own SQL or code is the rehearsal's finding; anything else ends the run. */
function migrationFailure(settled: Settled): MigrationFailedError | null {
  if (settled.ok) return null;
  if (settled.error instanceof MigrationFailedError) return settled.error;
  throw settled.error;
}

/** As `up` does it, through the same Umzug path: the migration, then its tracking row through the same transaction, with the lock still held. */
async function runAndRecord(tx: TransactionSql, plan: PlannedMigration, run: LockedRun, migrator: Migrator, startedAt: number): Promise<void> {
  await migrator.apply(plan.file, tx, startedAt);
  await run.lock.assertHeld(tx);
}

function logWaitStarted(file: MigrationFile, lock: AwaitedLock, blocking: readonly Blocker[], logger: Logger): void {
  logger.info("lock_wait_started", `${file.fileName} is waiting for ${describeLock(lock)}, ${describeBlockers(blocking)}`, {
    ...migrationAttributes(file),
    lock_type: lock.type,
    lock_mode: lock.mode,
    relation: lock.relation ?? undefined,
    blocking_pids: blocking.map((blocker) => blocker.pid),
  });
}

function notRehearsable(file: MigrationFile, logger: Logger): RehearsedMigration {
  logger.warn("migration_not_rehearsable", `not rehearsable: ${file.fileName} ${NO_TRANSACTION}`, migrationAttributes(file));
  return skipped(file, "not_rehearsable");
}

function notRun(file: MigrationFile, failed: MigrationFile, logger: Logger): RehearsedMigration {
  logger.info("migration_not_run", `not run: ${file.fileName} (${failed.fileName} failed before it, and it may depend on that)`, {
    ...migrationAttributes(file),
    after: failed.fileName,
  });
  return skipped(file, "not_run");
}

function held(file: MigrationFile, logger: Logger): RehearsedMigration {
  logger.info("migration_held", `held ${file.fileName}: ${file.holdReason} (up skips it too)`, { ...migrationAttributes(file), reason: file.holdReason });
  return skipped(file, "held");
}

function skipped(file: MigrationFile, outcome: RehearsalOutcome): RehearsedMigration {
  return { file, outcome, durationMs: null, error: null, lockWaits: [] };
}

const NO_TRANSACTION = "runs without a transaction (-- migrate:no-transaction), so it cannot be rolled back; up runs it for real";

type OutcomeCounts = Record<RehearsalOutcome, number>;

function countOutcomes(report: readonly RehearsedMigration[]): OutcomeCounts {
  const counts: OutcomeCounts = { passed: 0, failed: 0, not_rehearsable: 0, not_run: 0, held: 0 };
  for (const { outcome } of report) counts[outcome]++;
  return counts;
}

function summarize(counts: OutcomeCounts, durationMs: number): string {
  const parts = (Object.keys(counts) as RehearsalOutcome[]).filter((outcome) => counts[outcome] > 0).map((outcome) => `${counts[outcome]} ${OUTCOME_LABEL[outcome]}`);
  const tally = parts.length > 0 ? `: ${parts.join(", ")}` : "";
  if (counts.passed + counts.failed === 0) return `nothing to rehearse${tally || ": no pending migrations"}`;
  return `rehearsed in ${formatDuration(durationMs)} and rolled back, the database is unchanged${tally}`;
}

const OUTCOME_LABEL: Record<RehearsalOutcome, string> = {
  passed: "passed",
  failed: "failed",
  not_rehearsable: "not rehearsable",
  not_run: "not run",
  held: "held",
};

/** One line per migration, details indented under it; the summary is the run_finished line after it. */
function textDocument(report: readonly RehearsedMigration[]): string {
  if (report.length === 0) return "nothing to rehearse: no pending migrations";
  const labelWidth = Math.max(...report.map(({ outcome }) => OUTCOME_LABEL[outcome].length));
  const fileWidth = Math.max(...report.map(({ file }) => file.fileName.length));
  const indent = " ".repeat(2 + labelWidth + 2);
  const lines: string[] = [];
  for (const entry of report) {
    lines.push(`  ${OUTCOME_LABEL[entry.outcome].padEnd(labelWidth)}  ${entry.file.fileName.padEnd(fileWidth)}  ${textNote(entry, report)}`.trimEnd());
    for (const detail of textDetails(entry)) lines.push(`${indent}${detail}`);
  }
  return lines.join("\n");
}

function textNote(entry: RehearsedMigration, report: readonly RehearsedMigration[]): string {
  switch (entry.outcome) {
    case "passed":
    case "failed":
      return formatDuration(entry.durationMs ?? 0);
    case "not_rehearsable":
      return "no transaction: cannot be rolled back, so up runs it for real";
    case "not_run":
      return `after ${report.find((other) => other.outcome === "failed")?.file.fileName ?? "the failure"} failed`;
    case "held":
      return entry.file.holdReason ?? "";
  }
}

function textDetails(entry: RehearsedMigration): string[] {
  const waits = entry.lockWaits.map((wait) => `waited ${formatDuration(wait.waitedMs)} for ${describeLock(wait.lock)}, ${describeBlockers(wait.blocking)}`);
  if (!entry.error) return waits;
  return [...waits, ...failureLines(entry.error.location, entry.error.server)];
}

/** The `--json` document; its shape is documented in README.md ("rehearse"). */
function jsonDocument(report: readonly RehearsedMigration[], durationMs: number): string {
  return JSON.stringify({
    rolled_back: true,
    duration_ms: durationMs,
    migrations: report.map((entry) => ({
      version: entry.file.version,
      name: entry.file.name,
      file: entry.file.fileName,
      outcome: entry.outcome,
      duration_ms: entry.durationMs,
      error: entry.error ? failureDocument(entry.error) : null,
      lock_waits: entry.lockWaits.map((wait) => ({
        waited_ms: wait.waitedMs,
        lock_type: wait.lock.type,
        mode: wait.lock.mode,
        relation: wait.lock.relation,
        blocking: wait.blocking.map((blocker) => ({ pid: blocker.pid, application_name: blocker.applicationName })),
      })),
    })),
  });
}

function describeLock(lock: AwaitedLock): string {
  switch (lock.type) {
    case "relation":
      return `${lock.mode} on ${lock.relation ?? "a relation"}`;
    case "tuple":
      return `a row lock (${lock.mode}) in ${lock.relation ?? "a relation"}`;
    case "transactionid":
      return "another transaction to finish (it holds a row this migration needs)";
    default:
      return `a ${lock.type} lock (${lock.mode})`;
  }
}

function describeWaits(waits: readonly LockWait[]): string {
  if (waits.length === 0) return "";
  return `, of which ${formatDuration(totalWaitedMs(waits))} waiting for locks`;
}

function totalWaitedMs(waits: readonly LockWait[]): number {
  return waits.reduce((sum, wait) => sum + wait.waitedMs, 0);
}

