/**
 * `verify-rollbacks`: proves that each rollback restores the schema its migration started from,
 * in a scratch database of its own, so nobody learns it during an incident.
 *
 * On the server of DATABASE_URL (or the embedded one) it creates `studio_verify_rollbacks_<random>`
 * and applies every migration in version order, held ones included, each as `up` would (one
 * transaction, or statement by statement for a no-transaction file). Around each migration that
 * has a rollback it takes a schema snapshot before, applies the migration, runs the rollback in a
 * transaction and snapshots inside it. When the two snapshots match, the rollback commits and the
 * migration is applied again, as the next `up` after a `down` would. When they differ, the
 * rollback's transaction is rolled back instead, so the database is back at the migration's own
 * schema and the pairs after it are verified from where they belong, not from a broken state.
 *
 * The scratch database is always dropped, whatever happens; the real database named in the URL is
 * only connected to, to create and drop it.
 */
import { ExitCode, MigrationFailedError, RefusedError, RunAbortedError, type Refusal, failureDocument } from "../shared/errors.ts";
import { throwIfCancelled } from "../shared/cancellation.ts";
import { errorCode } from "../database/database.ts";
import { applyInScratch, withScratchDatabase, type ScratchSession } from "../run/scratch-database.ts";
import { describeTarget } from "../shared/redact.ts";
import { formatDuration } from "../shared/duration.ts";
import { formatTable, plural } from "../shared/table-format.ts";
import { planMigrations, type PlannedMigration } from "../run/runner.ts";
import { migrationAttributes } from "../run/run-events.ts";
import { describeDifference, diffSnapshots, type SnapshotDifference } from "../database/schema-snapshot/diff.ts";
import { takeSnapshot } from "../database/schema-snapshot/snapshot.ts";
import type { SchemaSnapshot } from "../database/schema-snapshot/types.ts";
import { sqlRollback, typeScriptRollback, type PlannedRollback } from "./down.ts";
import type { Config } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { SqlParser } from "../files/sql-statements.ts";
import type { CommandRun } from "./context.ts";

export interface VerifyRollbacksOptions {
  /** --json: one JSON document on stdout instead of the text. */
  readonly json: boolean;
}

export interface VerifyRun extends CommandRun {
  /** The server to create the scratch database on (DATABASE_URL's, or the embedded one). */
  readonly url: string;
  readonly config: Config;
  readonly signal: AbortSignal;
}

/** Every scratch database starts with this, so one left behind by a killed run is recognisable. */
export const SCRATCH_DATABASE_PREFIX = "studio_verify_rollbacks_";
const SCRATCH_PURPOSE = { prefix: SCRATCH_DATABASE_PREFIX, otherwise: "or run verify-rollbacks locally with --embedded" };

export type VerifyOutcome = "verified" | "mismatch" | "no_rollback" | "migration_failed" | "rollback_failed" | "reapply_failed" | "not_run";

/** What verification found for one migration and its rollback. */
export interface VerifiedPair {
  readonly file: MigrationFile;
  /** What undoes it: `008_rollback.sql`, `004_backfill.ts down()`, or null when nothing does. */
  readonly rollback: string | null;
  readonly outcome: VerifyOutcome;
  /** For a mismatch: how the schema after the rollback differs from the one before the migration. */
  readonly differences: readonly SnapshotDifference[];
  readonly error: MigrationFailedError | null;
}

interface PlannedPair {
  readonly plan: PlannedMigration;
  readonly rollback: PlannedRollback | undefined;
  readonly rollbackName: string | null;
}

/** Outcomes after which the scratch database no longer holds what the next migration expects. */
const STOPS_VERIFICATION: ReadonlySet<VerifyOutcome> = new Set(["migration_failed", "reapply_failed"]);
const FAILED: ReadonlySet<VerifyOutcome> = new Set(["migration_failed", "rollback_failed", "reapply_failed"]);

export async function verifyRollbacks(run: VerifyRun, options: VerifyRollbacksOptions): Promise<ExitCode> {
  const started = performance.now();
  const pairs = await planPairs(run.files, await run.loadParser());
  const target = describeTarget(run.url);
  run.logger.info(
    "run_started",
    `verify-rollbacks: ${target}, ${plural(pairs.length, "migration file")}, each applied and rolled back in a scratch database (holds are ignored)`,
    { command: "verify-rollbacks", target, files: pairs.length },
  );
  const server = { url: run.url, connectTimeoutMs: run.config.connectTimeoutMs, runner: run.config.runner, policy: run.config.policy, logger: run.logger, signal: run.signal };
  const { database, result: report } = await withScratchDatabase(server, SCRATCH_PURPOSE, (scratch) => verifyPairs(pairs, scratch, run));
  const durationMs = Math.round(performance.now() - started);
  run.writeDocument(options.json ? jsonDocument(report, target, database, durationMs) : textDocument(report));

  const counts = countOutcomes(report);
  run.logger.info("run_finished", summarize(counts, durationMs), { ...counts, duration_ms: durationMs });
  if (report.some((pair) => FAILED.has(pair.outcome))) return ExitCode.migrationFailed;
  return counts.mismatch > 0 ? ExitCode.refused : ExitCode.success;
}

/**
 * Parses and loads every migration as `up` would (refusing the same problems), then checks every
 * rollback as `down` would, refusing all of their problems together, before any database exists.
 */
async function planPairs(files: readonly MigrationFile[], parser: SqlParser): Promise<PlannedPair[]> {
  const plans = await planMigrations(files, parser);
  const refusals: Refusal[] = [];
  const pairs: PlannedPair[] = [];
  for (const plan of plans) {
    try {
      pairs.push(pairFor(plan, parser));
    } catch (error) {
      if (!(error instanceof RefusedError)) throw error;
      refusals.push(...error.refusals);
    }
  }
  if (refusals.length > 0) throw new RefusedError(refusals);
  return pairs;
}

/** The rollback `down` would run: a TypeScript migration's down() first, else its NNN_rollback.sql. */
function pairFor(plan: PlannedMigration, parser: SqlParser): PlannedPair {
  const { file, module } = plan;
  if (module?.down) return { plan, rollback: typeScriptRollback(file, module.down), rollbackName: `${file.fileName} down()` };
  if (file.rollback) return { plan, rollback: sqlRollback(file, file.rollback, parser), rollbackName: file.rollback.fileName };
  return { plan, rollback: undefined, rollbackName: null };
}

// ---------------------------------------------------------------------------------------------
// Verifying, pair by pair.

async function verifyPairs(pairs: readonly PlannedPair[], scratch: ScratchSession, run: VerifyRun): Promise<VerifiedPair[]> {
  // Nothing to exclude in a fresh database, but a migration could create tables of these names.
  const exclude = [`${run.config.table.schema}.${run.config.table.table}`, `${run.config.table.schema}.${run.config.table.table}_runs`];
  const report: VerifiedPair[] = [];
  let stoppedBy: MigrationFile | undefined;
  for (const pair of pairs) {
    const { file } = pair.plan;
    if (stoppedBy) {
      report.push(notRun(pair, stoppedBy, run.logger));
      continue;
    }
    throwIfCancelled(scratch.signal, `verifying ${file.fileName}`);
    scratch.activity.migration = file.name;
    const verified = await verifyPair(pair, scratch, exclude, run.logger);
    report.push(verified);
    if (STOPS_VERIFICATION.has(verified.outcome)) stoppedBy = file;
  }
  scratch.activity.migration = undefined;
  return report;
}

async function verifyPair(pair: PlannedPair, scratch: ScratchSession, exclude: readonly string[], logger: Logger): Promise<VerifiedPair> {
  const { plan, rollback } = pair;
  const { file } = plan;
  const before = rollback ? await step(scratch, `taking a snapshot before ${file.fileName}`, () => takeSnapshot(scratch.sql, { exclude })) : undefined;

  const applied = await attempt(scratch, `applying ${file.fileName}`, () => applyInScratch(scratch, plan, STOPPED));
  if (!applied.ok) return failed(pair, "migration_failed", applied.error, logger);
  if (!rollback || !before) return noRollback(pair, logger);

  const started = performance.now();
  const undone = await attempt(scratch, `running ${pair.rollbackName}`, () => rollBackAndCompare(scratch, rollback, before, exclude));
  if (!undone.ok) return failed(pair, "rollback_failed", undone.error, logger);
  if (undone.value.length > 0) return mismatch(pair, undone.value, logger);

  const reapplied = await attempt(scratch, `applying ${file.fileName} again`, () => applyInScratch(scratch, plan, REAPPLY_STOPPED));
  if (!reapplied.ok) return failed(pair, "reapply_failed", reapplied.error, logger);
  const durationMs = Math.round(performance.now() - started);
  logger.info("rollback_verified", `${pair.rollbackName} restores the schema from before ${file.fileName}`, {
    ...migrationAttributes(file),
    rollback: pair.rollbackName,
    duration_ms: durationMs,
  });
  return { file, rollback: pair.rollbackName, outcome: "verified", differences: [], error: null };
}

/** What a failure's message says happened next; the scratch database is dropped either way. */
const STOPPED = "verification stopped here, since the migrations after it build on it; the scratch database is dropped";
const REAPPLY_STOPPED = `it failed when applied again after its rollback, as the next up after a down would apply it; ${STOPPED}`;
const ROLLBACK_UNDONE = "the rollback's transaction was rolled back, and verification went on from the migration's own schema";

/** Thrown to leave the rollback's transaction without committing it. */
class SchemaNotRestored extends Error {
  constructor(readonly differences: SnapshotDifference[]) {
    super("the rollback does not restore the schema");
  }
}

/**
 * Runs the rollback in a transaction and compares the schema inside it with `before`. It commits
 * only when they match; otherwise it rolls back, leaving the migration applied.
 */
async function rollBackAndCompare(scratch: ScratchSession, rollback: PlannedRollback, before: SchemaSnapshot, exclude: readonly string[]): Promise<SnapshotDifference[]> {
  try {
    await scratch.sql.begin(async (tx) => {
      await rollback.undo(tx, ROLLBACK_UNDONE);
      const differences = diffSnapshots(before, await takeSnapshot(tx, { exclude }));
      if (differences.length > 0) throw new SchemaNotRestored(differences);
    });
    await scratch.reset();
    return [];
  } catch (error) {
    if (error instanceof SchemaNotRestored) return error.differences;
    throw error;
  }
}

type Attempted<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: MigrationFailedError };

/**
 * Runs one step whose SQL may fail: a failure of the migration's or rollback's own SQL is a
 * finding, returned; anything else (a lost connection, a cancelled run) ends the run.
 */
async function attempt<T>(scratch: ScratchSession, doing: string, work: () => Promise<T>): Promise<Attempted<T>> {
  try {
    return { ok: true, value: await step(scratch, doing, work) };
  } catch (error) {
    if (error instanceof MigrationFailedError && !scratch.signal.aborted) return { ok: false, error };
    throw error;
  }
}

async function step<T>(scratch: ScratchSession, doing: string, work: () => Promise<T>): Promise<T> {
  scratch.activity.current = doing;
  try {
    return await work();
  } catch (error) {
    if (error instanceof MigrationFailedError || scratch.signal.aborted) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new RunAbortedError(`verify-rollbacks stopped while ${doing}: ${message} (${errorCode(error)}); the scratch database is dropped`, { cause: error });
  }
}

function failed(pair: PlannedPair, outcome: "migration_failed" | "rollback_failed" | "reapply_failed", error: MigrationFailedError, logger: Logger): VerifiedPair {
  logger.error(outcome, error.message, { ...migrationAttributes(pair.plan.file), rollback: pair.rollbackName ?? undefined, ...error.attributes() });
  return { file: pair.plan.file, rollback: pair.rollbackName, outcome, differences: [], error };
}

function mismatch(pair: PlannedPair, differences: readonly SnapshotDifference[], logger: Logger): VerifiedPair {
  const { file } = pair.plan;
  const lines = differences.map(describeDifference);
  logger.warn(
    "rollback_mismatch",
    `${pair.rollbackName} does not restore the schema from before ${file.fileName} (${plural(differences.length, "difference")}): ${lines.join("; ")}`,
    { ...migrationAttributes(file), rollback: pair.rollbackName, differences: lines },
  );
  return { file, rollback: pair.rollbackName, outcome: "mismatch", differences, error: null };
}

function noRollback(pair: PlannedPair, logger: Logger): VerifiedPair {
  const { file } = pair.plan;
  const expected = `${file.fileName.slice(0, file.fileName.indexOf("_"))}_rollback.sql`;
  logger.info("rollback_missing", `no rollback: ${file.fileName} has no ${expected}${file.language === "typescript" ? " and no down() export" : ""}, so down cannot undo it`, {
    ...migrationAttributes(file),
  });
  return { file, rollback: null, outcome: "no_rollback", differences: [], error: null };
}

function notRun(pair: PlannedPair, stoppedBy: MigrationFile, logger: Logger): VerifiedPair {
  const { file } = pair.plan;
  logger.info("migration_not_run", `not run: ${file.fileName} (${stoppedBy.fileName} failed before it, and it may depend on that)`, {
    ...migrationAttributes(file),
    after: stoppedBy.fileName,
  });
  return { file, rollback: pair.rollbackName, outcome: "not_run", differences: [], error: null };
}

// ---------------------------------------------------------------------------------------------
// The report.

type OutcomeCounts = Record<VerifyOutcome, number>;

function countOutcomes(report: readonly VerifiedPair[]): OutcomeCounts {
  const counts: OutcomeCounts = { verified: 0, mismatch: 0, no_rollback: 0, migration_failed: 0, rollback_failed: 0, reapply_failed: 0, not_run: 0 };
  for (const { outcome } of report) counts[outcome]++;
  return counts;
}

const OUTCOME_LABEL: Record<VerifyOutcome, string> = {
  verified: "verified",
  mismatch: "not restored",
  no_rollback: "no rollback",
  migration_failed: "migration failed",
  rollback_failed: "rollback failed",
  reapply_failed: "failed when applied again",
  not_run: "not run",
};

function summarize(counts: OutcomeCounts, durationMs: number): string {
  const parts = (Object.keys(counts) as VerifyOutcome[]).filter((outcome) => counts[outcome] > 0).map((outcome) => `${counts[outcome]} ${OUTCOME_LABEL[outcome]}`);
  return `verify-rollbacks: ${parts.join(", ") || "no migrations"} in ${formatDuration(durationMs)}`;
}

/** A table, one row per migration, with each difference or error on its own line under its row. */
function textDocument(report: readonly VerifiedPair[]): string {
  if (report.length === 0) return "no migrations to verify";
  const rows = report.map((pair) => [pair.file.name.slice(0, pair.file.name.indexOf("_")), pair.file.fileName, pair.rollback ?? "-", resultText(pair)]);
  const [header, ...lines] = formatTable(["VERSION", "MIGRATION", "ROLLBACK", "RESULT"], rows);
  return [header!, ...lines.flatMap((line, index) => [line, ...detailLines(report[index]!).map((detail) => `    ${detail}`)])].join("\n");
}

function resultText(pair: VerifiedPair): string {
  switch (pair.outcome) {
    case "verified":
      return "restores the schema";
    case "mismatch":
      return `does not restore the schema (${plural(pair.differences.length, "difference")} from before the migration):`;
    case "no_rollback":
      return "no rollback";
    case "migration_failed":
      return "the migration failed:";
    case "rollback_failed":
      return "the rollback failed:";
    case "reapply_failed":
      return "restores the schema, but the migration failed when applied again:";
    case "not_run":
      return "not run (a migration before it failed)";
  }
}

function detailLines(pair: VerifiedPair): string[] {
  if (pair.error) {
    const { location, server } = pair.error;
    return [
      `${location.file}:${location.line}:${location.column}: ${server.message} (SQLSTATE ${server.code})`,
      `  statement: ${location.statement}`,
      ...(server.detail ? [`  detail: ${server.detail}`] : []),
      ...(server.hint ? [`  hint: ${server.hint}`] : []),
    ];
  }
  return pair.differences.map(describeDifference);
}

/** The `--json` document; its shape is documented in docs/commands.md ("verify-rollbacks"). */
function jsonDocument(report: readonly VerifiedPair[], target: string, database: string, durationMs: number): string {
  const counts = countOutcomes(report);
  return JSON.stringify({
    target,
    scratch_database: database,
    duration_ms: durationMs,
    migrations: report.map((pair) => ({
      version: pair.file.version,
      name: pair.file.name,
      file: pair.file.fileName,
      rollback: pair.rollback,
      hold_reason: pair.file.holdReason ?? null,
      outcome: pair.outcome,
      differences: pair.differences.map((difference) => ({
        kind: difference.kind,
        object: difference.object,
        change: difference.change,
        detail: difference.detail ?? null,
        text: describeDifference(difference),
      })),
      error: pair.error ? failureDocument(pair.error) : null,
    })),
    summary: { ...counts, total: report.length },
  });
}
