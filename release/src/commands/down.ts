/**
 * `down --to <version>`: undoes the applied migrations above <version>, newest first. Each rollback
 * runs through Umzug's `down`, the counterpart of how `up` applies, in one transaction together
 * with removing its tracking row: a rollback that fails leaves its migration applied and recorded.
 */
import type { TransactionSql } from "postgres";
import { ExitCode, RefusedError, type Refusal } from "../shared/errors.ts";
import { formatDuration } from "../shared/duration.ts";
import { throwIfCancelled } from "../shared/cancellation.ts";
import { fixCommand } from "../shared/invocation.ts";
import { classify, type MigrationEntry } from "../run/migration-state.ts";
import { readRecordedState } from "../run/recorded-state.ts";
import { applyStep, createMigrator, explainFailure, inLockedTransaction, planMigrations, runModuleFunction, runStatements, type MigrationStep, type Migrator } from "../run/runner.ts";
import { plural } from "../shared/table-format.ts";
import { transactionControlRefusals, type SqlParser } from "../files/sql-statements.ts";
import { loadTypeScriptMigration, type MigrationFunction } from "../files/typescript-migrations.ts";
import type { MigrationFile, SqlSource } from "../files/migration-files.ts";
import { withMigrationWork, type LockedRun, type LockedWork } from "./context.ts";

export interface DownOptions {
  /** Roll back every applied migration above this version. */
  readonly to: number;
  /** Go ahead without the pause to confirm. */
  readonly yes: boolean;
}

/** How one applied migration is undone, checked before anything runs. */
export interface PlannedRollback {
  readonly file: MigrationFile;
  /** What runs, for the log: `008_rollback.sql (5 statements)` or `TypeScript down()`. */
  readonly description: string;
  /** Undoes the migration through `tx`; a failure is reported with `outcome` as what happened. */
  readonly undo: (tx: TransactionSql, outcome: string) => Promise<void>;
}

export async function down(run: LockedRun, options: DownOptions): Promise<ExitCode> {
  const { records, facts } = await readRecordedState(run.sql, run);
  const entries = classify(run.files, records, { allowOutOfOrder: false, ...facts });
  // A row the run history says is gone must be repaired first: down would not know to undo it.
  const lost = entries.flatMap((entry) => (entry.state === "record_lost" && entry.refusal ? [entry.refusal] : []));
  if (lost.length > 0) throw new RefusedError(lost);
  run.history.markValidated();
  const toUndo = appliedAbove(options.to, entries);
  const heldAbove = records.filter((record) => record.version > options.to && record.status === "held").length;
  if (toUndo.length === 0) {
    run.logger.info("run_finished", `nothing to roll back: no migration above version ${options.to} is applied`, { rolled_back: 0, held: heldAbove });
    return ExitCode.success;
  }
  const plans = await planRollbacks(toUndo, await run.loadParser());
  await run.confirm("down", options.yes, plans.map((plan) => `roll back ${plan.file.name} with ${plan.description}`));

  const started = performance.now();
  await run.events.emit({ type: "files_planned", files: plans.map((plan) => plan.file), action: "roll back" });
  await rollBack(plans, await withMigrationWork(run));
  const durationMs = Math.round(performance.now() - started);
  const names = plans.map((plan) => plan.file.name).join(", ");
  const kept = heldAbove > 0 ? `; ${plural(heldAbove, "held migration")} above version ${options.to} left untouched` : "";
  run.logger.info("run_finished", `rolled back ${plural(plans.length, "migration")} in ${formatDuration(durationMs)}: ${names}${kept}`, {
    rolled_back: plans.length,
    held: heldAbove,
    duration_ms: durationMs,
  });
  return ExitCode.success;
}

/**
 * Every version above `to` that a run wrote as applied, or started to apply, newest first. Held
 * rows never ran, so there is nothing of theirs to undo.
 */
function appliedAbove(to: number, entries: readonly MigrationEntry[]): MigrationEntry[] {
  return entries
    .filter((entry) => entry.version > to && entry.record !== undefined && entry.record.status !== "held")
    .reverse();
}

/** Checks every rollback (history intact, present, parsable, no transaction control), refusing all problems together. */
async function planRollbacks(entries: readonly MigrationEntry[], parser: SqlParser): Promise<PlannedRollback[]> {
  const refusals: Refusal[] = [];
  const plans: PlannedRollback[] = [];
  for (const entry of entries) {
    try {
      plans.push(await planRollback(entry, parser));
    } catch (error) {
      if (!(error instanceof RefusedError)) throw error;
      refusals.push(...error.refusals);
    }
  }
  if (refusals.length > 0) throw new RefusedError(refusals);
  return plans;
}

async function planRollback(entry: MigrationEntry, parser: SqlParser): Promise<PlannedRollback> {
  if (entry.refusal) throw new RefusedError([untrustedHistory(entry.refusal)]);
  const file = entry.file!; // classify refuses every applied version whose file is gone
  const module = file.language === "typescript" ? await loadTypeScriptMigration(file) : undefined;
  if (module?.down) return typeScriptRollback(file, module.down);
  if (!file.rollback) throw new RefusedError([noRollback(file)]);
  return sqlRollback(file, file.rollback, parser);
}

export function typeScriptRollback(file: MigrationFile, undo: MigrationFunction): PlannedRollback {
  return {
    file,
    description: "TypeScript down()",
    undo: (tx, outcome) => runModuleFunction(tx, file, undo, outcome),
  };
}

export function sqlRollback(file: MigrationFile, rollback: SqlSource, parser: SqlParser): PlannedRollback {
  const statements = parser.statements(rollback);
  const refusals = transactionControlRefusals(rollback, statements).map((refusal) => ({
    ...refusal,
    resolution: "remove it: down runs each rollback in one transaction together with removing its tracking row",
  }));
  if (statements.length === 0) {
    refusals.push({
      check: "rollback",
      file: rollback.fileName,
      message: `the rollback of ${file.name} has no SQL statements (only comments)`,
      resolution: `write the SQL that restores the schema exactly as it was before ${file.fileName} ran`,
    });
  }
  if (refusals.length > 0) throw new RefusedError(refusals);
  return {
    file,
    description: `${rollback.fileName} (${plural(statements.length, "statement")})`,
    undo: (tx, outcome) => runStatements(tx, rollback, statements, { outcome: () => outcome }),
  };
}

/** A changed, missing or failed migration: its rollback may not match what was actually applied. */
function untrustedHistory(refusal: Refusal): Refusal {
  return { ...refusal, message: `${refusal.message}; its rollback may not undo what was applied` };
}

function noRollback(file: MigrationFile): Refusal {
  const rollbackName = `${file.fileName.slice(0, file.fileName.indexOf("_"))}_rollback.sql`;
  const typeScript = file.language === "typescript";
  return {
    check: "rollback",
    file: file.fileName,
    message: `applied migration ${file.name} has no rollback (no ${rollbackName}${typeScript ? " and no down() export" : ""})`,
    resolution:
      `write ${rollbackName} beside it${typeScript ? ` or export down(sql) from ${file.fileName}` : ""}, restoring the schema exactly as before it ran; ` +
      `or keep it applied: ${fixCommand(`down --to ${file.version}`)}`,
  };
}

/** Runs the planned rollbacks, newest first, each in its own transaction with its tracking row. */
async function rollBack(plans: readonly PlannedRollback[], run: LockedWork): Promise<void> {
  const rolledBack: MigrationFile[] = [];
  const migrator = await createMigrator(plans.map((plan) => rollbackStep(plan, run, rolledBack)), run.storage);
  for (const plan of plans) await rollBackOne(plan, run, migrator, rolledBack);
  // Only after the last one: a failure keeps naming the rollback it happened in.
  await run.events.emit({ type: "files_done" });
}

/**
 * A migration to roll back, as the run's Umzug instance knows it: its rollback, and its own SQL
 * (planned only if Umzug were ever to apply it, which down never asks).
 */
function rollbackStep(plan: PlannedRollback, run: LockedWork, rolledBack: readonly MigrationFile[]): MigrationStep {
  const { file } = plan;
  return {
    file,
    up: async (sql) => {
      const [migration] = await planMigrations([file], await run.loadParser(), run.signal);
      await applyStep(migration!, run).up(sql);
    },
    down: (sql) => plan.undo(sql as TransactionSql, failedRollbackOutcome(file, rolledBack)).then(() => run.work.restoreInTransaction(sql)),
  };
}

/** One rollback, in one transaction with removing its tracking row (Umzug's down). */
async function rollBackOne(plan: PlannedRollback, run: LockedWork, migrator: Migrator, rolledBack: MigrationFile[]): Promise<void> {
  const { file } = plan;
  throwIfCancelled(run.signal, `rolling back ${file.fileName}`);
  await run.events.emit({ type: "file_started", file, action: "roll back", work: plan.description });
  const startedAt = performance.now();
  await inLockedTransaction(run, (tx) => migrator.revert(file, tx, startedAt)).catch((error: unknown) => Promise.reject(explainFailure(error, `rolling back ${file.fileName}`, rolledBackBefore(rolledBack))));
  await run.events.emit({ type: "file_done", file, action: "roll back", durationMs: Math.round(performance.now() - startedAt) });
  rolledBack.push(file);
}

function failedRollbackOutcome(file: MigrationFile, rolledBack: readonly MigrationFile[]): string {
  return `the rollback's transaction was rolled back: ${file.name} is still applied and recorded${rolledBackBefore(rolledBack)}. Fix the rollback and run down again`;
}

function rolledBackBefore(rolledBack: readonly MigrationFile[]): string {
  if (rolledBack.length === 0) return "";
  return `; ${rolledBack.map((done) => done.name).join(", ")} ${rolledBack.length === 1 ? "was" : "were"} rolled back before it and stay${rolledBack.length === 1 ? "s" : ""} so`;
}
