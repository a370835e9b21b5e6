/**
 * `up` (the default command): apply every pending migration in version order, after checking that
 * history is intact, the order is right and every pending file is valid SQL for its mode.
 */
import { RefusedError, type Refusal } from "../errors.ts";
import { assessState } from "../migration-state.ts";
import { applyMigrations, migrationAttributes, type PlannedMigration } from "../runner.ts";
import { transactionControlRefusals, type SqlParser } from "../sql-statements.ts";
import { formatDuration } from "../duration.ts";
import type { LockedRun } from "./locked-run.ts";
import type { MigrationFile } from "../migration-files.ts";

export interface UpOptions {
  readonly allowOutOfOrder: boolean;
  /** Loads the SQL parser; called only when something is pending. */
  readonly loadParser: () => Promise<SqlParser>;
}

export async function up(run: LockedRun, options: UpOptions): Promise<void> {
  const started = performance.now();
  const { files, logger, storage, sql } = run;
  const state = assessState(files, await storage.records(sql), { allowOutOfOrder: options.allowOutOfOrder });
  if (state.refusals.length > 0) throw new RefusedError(state.refusals);
  const plans = state.pending.length > 0 ? planMigrations(state.pending, await options.loadParser()) : [];
  await storage.ensureTable(sql);

  for (const file of state.held) {
    await storage.recordHeld(sql, file);
    logger.info("migration_held", `held ${file.fileName}: ${file.holdReason} (remove its -- migrate:hold line to apply it)`, {
      ...migrationAttributes(file),
      reason: file.holdReason,
    });
  }
  for (const { file, reason } of state.outOfOrder) {
    logger.warn("migration_out_of_order", `${file.fileName} applies below the highest applied version ${state.highestApplied} (${reason})`, {
      ...migrationAttributes(file),
      reason,
    });
  }
  const applied = await applyMigrations(plans, run);
  const alreadyApplied = files.length - state.held.length - applied;
  const durationMs = Math.round(performance.now() - started);
  const summary =
    applied === 0
      ? `nothing to apply: ${alreadyApplied} applied, ${state.held.length} held`
      : `applied ${applied} migration${applied === 1 ? "" : "s"} in ${formatDuration(durationMs)} (${alreadyApplied} were already applied, ${state.held.length} held)`;
  logger.info("run_finished", summary, { applied, already_applied: alreadyApplied, held: state.held.length, duration_ms: durationMs });
}

/** Parses every pending file, refusing all transaction-control problems together before anything runs. */
function planMigrations(pending: readonly MigrationFile[], parser: SqlParser): PlannedMigration[] {
  const refusals: Refusal[] = [];
  const plans: PlannedMigration[] = [];
  for (const file of pending) {
    try {
      const statements = parser.statements(file);
      if (statements.length === 0) {
        refusals.push({ check: "file", file: file.fileName, message: "the file has no SQL statements (only comments)", resolution: "write the migration's SQL in it, or delete it" });
      }
      if (file.transactional) refusals.push(...transactionControlRefusals(file, statements));
      plans.push({ file, statements });
    } catch (error) {
      if (!(error instanceof RefusedError)) throw error;
      refusals.push(...error.refusals);
    }
  }
  if (refusals.length > 0) throw new RefusedError(refusals);
  return plans;
}
