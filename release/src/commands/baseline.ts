/**
 * `baseline --to <version>`: adopts a database whose schema was applied by hand. The migrations up
 * to <version> are recorded as applied (held ones as held) without running them, all in one
 * transaction, so the next `up` applies only what comes after.
 *
 * It records only what is true: first it builds the schema those migrations produce in a scratch
 * database on the same server and compares it with the live one, and refuses a mismatch naming
 * each difference. `--skip-schema-check` adopts without that check, for an operator who knows
 * better; the log warns and the run history names the flag. `--to 0` records nothing: the
 * database's objects are someone else's, and every migration runs on top of them.
 */
import { ExitCode, RefusedError, type Refusal } from "../shared/errors.ts";
import { formatDuration } from "../shared/duration.ts";
import { fixCommand } from "../shared/invocation.ts";
import { inLockedTransaction, planMigrations } from "../run/runner.ts";
import { migrationAttributes } from "../run/run-events.ts";
import { applyInScratch, withScratchDatabase } from "../run/scratch-database.ts";
import { describeDifference, diffSnapshots } from "../database/schema-snapshot/diff.ts";
import { takeSnapshot } from "../database/schema-snapshot/snapshot.ts";
import { bookkeepingTables } from "../database/drift.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { MigrationRecord } from "../database/storage.ts";
import { withMigrationWork, type LockedRun } from "./context.ts";

export interface BaselineOptions {
  /** The last version the database already has; 0 adopts it with nothing recorded. */
  readonly to: number;
  /** Go ahead without the pause to confirm. */
  readonly yes: boolean;
  /** Adopt without comparing the live schema with what the migrations build. */
  readonly skipSchemaCheck: boolean;
}

/** `--to 0`: the database's objects are not the migrations' work; every migration is still to run. */
const ADOPT_EMPTY = "create the tracking table with nothing recorded: every migration runs on the next up, on top of what the database holds";

export async function baseline(run: LockedRun, options: BaselineOptions): Promise<ExitCode> {
  const { storage, logger } = run;
  const adopted = run.files.filter((file) => file.version <= options.to);
  refuseUnlessAdoptable(adopted, await storage.records(run.sql), options.to, run.files);
  await checkSchema(run, adopted, options);
  run.history.markValidated();
  await run.confirm("baseline", options.yes, adopted.length > 0 ? adopted.map(describeStep) : [ADOPT_EMPTY]);
  const started = performance.now();

  await inLockedTransaction(await withMigrationWork(run), async (tx) => {
    await storage.ensureTable(tx);
    for (const file of adopted) await (isHeld(file) ? storage.recordHeld(tx, file) : storage.recordBaseline(tx, file));
  });
  // Logged only after the commit, so the log never claims a row that was rolled back.
  for (const file of adopted) logRecorded(run, file);
  const held = adopted.filter(isHeld).length;
  const durationMs = Math.round(performance.now() - started);
  logger.info(
    "run_finished",
    `baseline: ${adopted.length - held} recorded as applied and ${held} as held in ${storage.qualifiedName}, without running them, in ${formatDuration(durationMs)}; ` +
      `check with ${fixCommand(`status`)}, then deploy`,
    { baselined: adopted.length - held, held, duration_ms: durationMs },
  );
  return ExitCode.success;
}

/** A database with any of these versions recorded is already tracked: baseline would rewrite its history. */
function refuseUnlessAdoptable(adopted: readonly MigrationFile[], records: readonly MigrationRecord[], to: number, files: readonly MigrationFile[]): void {
  if (adopted.length === 0 && to !== 0) {
    const lowest = files[0];
    throw new RefusedError([
      {
        check: "baseline",
        file: `version ${to}`,
        message: `no migration file has a version at or below ${to}${lowest ? ` (the lowest is ${lowest.fileName})` : ""}, so there is nothing to record`,
        resolution: `give --to the version of the last migration the database already has, e.g. ${fixCommand(`baseline --to ${lowest?.version ?? 1}`)}`,
      },
    ]);
  }
  const tracked = records.filter((record) => record.version <= to);
  if (tracked.length > 0) throw new RefusedError(tracked.map((record) => alreadyTracked(record, files)));
}

function alreadyTracked(record: MigrationRecord, files: readonly MigrationFile[]): Refusal {
  const file = files.find((candidate) => candidate.version === record.version);
  return {
    check: "baseline",
    file: file?.fileName ?? `${record.name}.sql`,
    message: `already recorded as ${record.status}: this database is already tracked`,
    resolution: `baseline is only for a database without a tracking history; see where this one stands with: ${fixCommand(`status`)}`,
  };
}

const SCRATCH_PURPOSE = {
  prefix: "studio_baseline_",
  otherwise: "or, having checked the schema yourself, adopt it without this check: baseline --to <version> --skip-schema-check",
};

/** Refuses unless the live schema is the one the adopted migrations build (held ones are not applied, as up would not). */
async function checkSchema(run: LockedRun, adopted: readonly MigrationFile[], options: BaselineOptions): Promise<void> {
  const applied = adopted.filter((file) => !isHeld(file));
  if (applied.length === 0) return;
  if (options.skipSchemaCheck) {
    run.logger.warn("schema_check_skipped", `baseline --skip-schema-check: recording ${applied.length} migrations as applied without checking that the schema is what they build`, {
      skipped: "schema_check",
    });
    return;
  }
  const exclude = { exclude: bookkeepingTables(run.storage.table) };
  const plans = await planMigrations(applied, await run.loadParser(), run.signal);
  const { result: expected } = await withScratchDatabase(run.scratch, SCRATCH_PURPOSE, async (scratch) => {
    // As on any database the job manages: its own schema exists before the first migration runs (the run history lives there).
    await scratch.sql`create schema if not exists ${scratch.sql(run.storage.table.schema)}`;
    for (const plan of plans) {
      scratch.activity.migration = plan.file.name;
      await applyInScratch(scratch, plan, `it failed while baseline built the schema it would adopt, in a scratch database (dropped); nothing was recorded`);
    }
    return takeSnapshot(scratch.sql, exclude);
  });
  const differences = diffSnapshots(expected, await takeSnapshot(run.sql, exclude)).map(describeDifference);
  run.logger.info("baseline_schema_checked", `the live schema ${differences.length === 0 ? "is" : "is not"} what ${describeRange(applied)} build`, { differences: differences.length });
  if (differences.length > 0) throw new RefusedError([schemaMismatch(applied, differences, options.to)]);
}

function schemaMismatch(applied: readonly MigrationFile[], differences: readonly string[], to: number): Refusal {
  return {
    check: "baseline_schema",
    file: `version ${to}`,
    message: `the live schema is not what ${describeRange(applied)} build (${differences.length} difference${differences.length === 1 ? "" : "s"}, live compared with built): ${differences.join("; ")}`,
    resolution:
      `baseline the version the database really is at, or bring the schema in line; if the differences are known and harmless, ` +
      `adopt it anyway with: ${fixCommand(`baseline --to ${to} --skip-schema-check`)}`,
  };
}

function describeRange(files: readonly MigrationFile[]): string {
  return files.length === 1 ? files[0]!.fileName : `${files[0]!.fileName} to ${files.at(-1)!.fileName}`;
}

function isHeld(file: MigrationFile): boolean {
  return file.holdReason !== undefined;
}

function describeStep(file: MigrationFile): string {
  return isHeld(file) ? `record ${file.name} as held (${file.holdReason})` : `record ${file.name} as applied, without running it`;
}

function logRecorded(run: LockedRun, file: MigrationFile): void {
  if (isHeld(file)) {
    run.logger.info("migration_held", `held ${file.fileName}: ${file.holdReason} (remove its -- migrate:hold line to apply it)`, {
      ...migrationAttributes(file),
      reason: file.holdReason,
    });
    return;
  }
  run.logger.info("migration_baselined", `recorded ${file.fileName} as applied without running it (baseline)`, migrationAttributes(file));
}
