/**
 * `up` (the default command): apply every pending migration in version order, after checking that
 * history is intact, the order is right and every pending file is valid SQL for its mode.
 */
import { ExitCode, RefusedError } from "../shared/errors.ts";
import { classify, planUp, type UpPlan } from "../run/migration-state.ts";
import type { Logger } from "../shared/log.ts";
import { applyMigrations, planMigrations } from "../run/runner.ts";
import { migrationAttributes } from "../run/run-events.ts";
import { enforceLintGate } from "../lint/lint.ts";
import { checkSchema, driftRefusal, driftSummary, probeSchema, type SchemaProbe } from "../database/drift.ts";
import type { RecordedSchema } from "../database/run-history.ts";
import { formatDuration } from "../shared/duration.ts";
import { readRecordedState } from "../run/recorded-state.ts";
import { refuseUnmanagedDatabase } from "../database/unmanaged-database.ts";
import { withMigrationWork, type LockedRun } from "./context.ts";

export interface UpOptions {
  readonly allowOutOfOrder: boolean;
  /** Refuse, rather than warn, when the schema was changed outside migrations. */
  readonly strictDrift: boolean;
}

export async function up(run: LockedRun, options: UpOptions): Promise<ExitCode> {
  const started = performance.now();
  const { files, logger, storage, sql } = run;
  // Sent beside the tracking reads; awaited only once the history and the files passed their checks.
  const probe = probeSchema(sql, run.history);
  probe.catch(() => undefined);
  const { records, facts } = await readRecordedState(sql, run);
  const state = planUp(classify(files, records, { allowOutOfOrder: options.allowOutOfOrder, ...facts }));
  if (state.refusals.length > 0) throw new RefusedError(state.refusals);
  if (!facts.trackingTable && !facts.evidence) await refuseUnmanagedDatabase(sql, storage.table, files);
  run.history.markValidated();
  await enforceLintGate(state.pending, run.lint, logger);
  await run.events.emit({ type: "files_planned", files: state.pending, action: "apply" });
  const plans = state.pending.length > 0 ? await planMigrations(state.pending, await run.loadParser(), run.signal) : [];
  const schemaBefore = await checkDrift(run, options.strictDrift, probe);
  await storage.ensureTable(sql);

  const recordedHolds = new Map(records.filter((record) => record.status === "held").map((record) => [record.version, record]));
  for (const file of state.held) {
    const recorded = recordedHolds.get(file.version);
    // A deploy with nothing new writes nothing: the hold is rewritten only when it changed.
    if (recorded?.holdReason !== file.holdReason || recorded?.checksum !== file.checksum) await storage.recordHeld(sql, file);
    logger.info("migration_held", `held ${file.fileName}: ${file.holdReason} (remove its -- migrate:hold line to apply it)`, {
      ...migrationAttributes(file),
      reason: file.holdReason,
    });
  }
  warnOutOfOrder(state, logger);
  // The migration session opens only now: a deploy with nothing to apply never opens it.
  const applied = plans.length > 0 ? await applyMigrations(plans, await withMigrationWork(run)) : 0;
  if (applied === 0 && schemaBefore) await run.events.emit({ type: "schema_unchanged", schema: schemaBefore });
  const alreadyApplied = files.length - state.held.length - applied;
  const durationMs = Math.round(performance.now() - started);
  const summary =
    applied === 0
      ? `nothing to apply: ${alreadyApplied} applied, ${state.held.length} held`
      : `applied ${applied} migration${applied === 1 ? "" : "s"} in ${formatDuration(durationMs)} (${alreadyApplied} were already applied, ${state.held.length} held)`;
  logger.info("run_finished", summary, { applied, already_applied: alreadyApplied, held: state.held.length, duration_ms: durationMs });
  return ExitCode.success;
}

/** Compares the live schema with the one the last successful run left, before anything is applied; returns the live one. */
async function checkDrift(run: LockedRun, strict: boolean, probe: Promise<SchemaProbe>): Promise<RecordedSchema | undefined> {
  const { live, drift } = await checkSchema(run.sql, run.history, run.storage.table, probe);
  if (drift && strict) throw new RefusedError([driftRefusal(drift)]);
  if (drift) run.logger.warn("schema_drift", driftSummary(drift), { differences: drift.differences });
  return live;
}

/** Every version that applies below the highest applied one is named in the log, every run. */
export function warnOutOfOrder(state: UpPlan, logger: Logger): void {
  for (const { file, outOfOrderReason: reason } of state.outOfOrder) {
    logger.warn("migration_out_of_order", `${file!.fileName} applies below the highest applied version ${state.highestApplied} (${reason})`, {
      ...migrationAttributes(file!),
      reason,
    });
  }
}
