/**
 * `status`: every migration the files or the tracking table know, with its state and history, as a
 * table for a person or one JSON document for a program. Read-only: it takes no lock, never creates
 * the tracking table, and reads in a read-only transaction, so the server itself refuses any write.
 */
import { ExitCode, type Refusal } from "../shared/errors.ts";
import { classify, type MigrationEntry, type MigrationStateName, type StateOptions } from "../run/migration-state.ts";
import { formatDuration } from "../shared/duration.ts";
import { firstLine } from "../files/sql-statements.ts";
import { formatTable, plural } from "../shared/table-format.ts";
import type { MigrationLanguage } from "../files/migration-files.ts";
import type { MigrationRecord } from "../database/storage.ts";
import type { RunOutcome, RunSummary } from "../database/run-history.ts";
import { findDrift, type SchemaDrift } from "../database/drift.ts";
import { readRecordedState } from "../run/recorded-state.ts";
import type { ReadOnlyRun } from "./context.ts";

export interface StatusOptions {
  /** --json: one JSON document on stdout instead of the text. */
  readonly json: boolean;
  /** Exit 4 when anything needs attention (a CI gate). */
  readonly exitCode: boolean;
}

const STATES: readonly MigrationStateName[] = ["applied", "pending", "held", "failed", "changed", "missing", "out_of_order", "record_lost"];

/** States that mean `up` has work to do or would refuse. A hold is deliberate, so it does not count. */
const NEEDS_ATTENTION: ReadonlySet<MigrationStateName> = new Set(["pending", "failed", "changed", "missing", "out_of_order", "record_lost"]);

/** Enough of a sha256 to tell two versions of a file apart at a glance. */
const SHORT_CHECKSUM_LENGTH = 12;

export type StateCounts = Record<MigrationStateName, number>;

/** A refusal in a JSON document: `line` is null rather than absent, so the shape never varies. */
export interface RefusalDocument {
  readonly check: string;
  readonly file: string;
  readonly line: number | null;
  readonly message: string;
  readonly resolution: string;
}

export interface StatusMigration {
  readonly version: number;
  readonly name: string;
  /** Null when the file is gone (missing, or a held record without its file). */
  readonly file: string | null;
  readonly language: MigrationLanguage | null;
  readonly transactional: boolean;
  readonly state: MigrationStateName;
  readonly applied_at: string | null;
  /** Who applied it; for a failed migration, who ran it. */
  readonly applied_by: string | null;
  readonly execution_ms: number | null;
  readonly hold_reason: string | null;
  /** The server's error of a failed no-transaction migration; null when it was interrupted. */
  readonly error: string | null;
  /** A failed migration whose run stopped before it could record the error (status `running`). */
  readonly interrupted: boolean;
  readonly checksum: { readonly file: string | null; readonly recorded: string | null };
  /** Why `up` would refuse because of this migration, with the command that resolves it. */
  readonly refusal: RefusalDocument | null;
}

/** One of the last runs, from the run history. */
export interface StatusRun {
  readonly command: string;
  readonly started_at: string;
  readonly finished_at: string | null;
  /** `running` for a run still going, or one that was killed before it could finish its row. */
  readonly outcome: RunOutcome;
  readonly applied: number | null;
  readonly error_code: string | null;
  readonly error: string | null;
  readonly applied_by: string;
  readonly deployment_id: string | null;
  /** Attempts at a migration rolled back because of another session's locks, then retried. */
  readonly lost_attempts: number;
}

export interface StatusDocument {
  readonly table: string;
  readonly migrations: readonly StatusMigration[];
  readonly summary: StateCounts & { readonly total: number };
  /** The last runs, newest first (empty before the first run that passed validation). */
  readonly runs: readonly StatusRun[];
  /** Changes made outside migrations since the last successful run; null when there are none (or nothing was recorded yet). */
  readonly drift: { readonly since: string | null; readonly differences: readonly string[] } | null;
}

/** How many of the last runs status shows. */
const RECENT_RUNS = 5;

export async function status(run: ReadOnlyRun, options: StatusOptions): Promise<ExitCode> {
  const started = performance.now();
  const entries = await readMigrationState(run, { allowOutOfOrder: false });
  const runs = await run.history.recent(run.sql, RECENT_RUNS);
  const drift = await findDrift(run.sql, run.history, run.storage.table);
  const counts = countStates(entries);
  run.writeDocument(
    options.json ? JSON.stringify(statusDocument(run.storage.qualifiedName, entries, counts, runs, drift)) : statusText(entries, runs, drift),
  );

  const failCheck = options.exitCode && entries.some((entry) => NEEDS_ATTENTION.has(entry.state));
  const why = failCheck ? " (exit 4: something is pending, failed, changed, missing or out of order)" : "";
  run.logger.info("run_finished", `status: ${describeCounts(counts, entries.length)}${why}`, {
    ...counts,
    total: entries.length,
    duration_ms: Math.round(performance.now() - started),
  });
  return failCheck ? ExitCode.refused : ExitCode.success;
}

/**
 * The tracking table, read in one read-only snapshot, classified against the files. A missing
 * table reads as no records; it is not created.
 */
export async function readMigrationState(run: ReadOnlyRun, options: StateOptions): Promise<MigrationEntry[]> {
  const { records, facts } = await run.sql.begin("isolation level repeatable read read only", (tx) => readRecordedState(tx, run));
  return classify(run.files, records, { ...options, ...facts });
}

export function refusalDocument(refusal: Refusal): RefusalDocument {
  return { check: refusal.check, file: refusal.file, line: refusal.line ?? null, message: refusal.message, resolution: refusal.resolution };
}

/** A refusal as text: where, what, and on its own line the fix. */
export function refusalLines(refusal: Refusal): string[] {
  return [`  ${refusal.file}${refusal.line ? `:${refusal.line}` : ""}: ${refusal.message}`, `    fix: ${refusal.resolution}`];
}

function countStates(entries: readonly MigrationEntry[]): StateCounts {
  const counts = Object.fromEntries(STATES.map((state) => [state, 0])) as StateCounts;
  for (const entry of entries) counts[entry.state]++;
  return counts;
}

function describeCounts(counts: StateCounts, total: number): string {
  const present = STATES.filter((state) => counts[state] > 0).map((state) => `${counts[state]} ${state.replaceAll("_", " ")}`);
  return present.length > 0 ? `${plural(total, "migration")}: ${present.join(", ")}` : "no migrations";
}

function statusDocument(
  table: string,
  entries: readonly MigrationEntry[],
  counts: StateCounts,
  runs: readonly RunSummary[],
  drift: SchemaDrift | undefined,
): StatusDocument {
  return {
    table,
    migrations: entries.map(migrationDocument),
    summary: { ...counts, total: entries.length },
    runs: runs.map(runDocument),
    drift: drift ? { since: drift.since?.toISOString() ?? null, differences: drift.differences } : null,
  };
}

function runDocument(run: RunSummary): StatusRun {
  return {
    command: run.command,
    started_at: run.startedAt.toISOString(),
    finished_at: run.finishedAt?.toISOString() ?? null,
    outcome: run.outcome,
    applied: run.applied,
    error_code: run.errorCode,
    error: run.errorMessage,
    applied_by: run.appliedBy,
    deployment_id: run.deploymentId,
    lost_attempts: run.lostAttempts,
  };
}

function migrationDocument(entry: MigrationEntry): StatusMigration {
  const { file, record, state } = entry;
  // A held record only remembers a hold; the history fields describe a run that applied or failed.
  const ran = record?.status === "held" ? undefined : record;
  return {
    version: entry.version,
    name: entry.name,
    file: file?.fileName ?? null,
    language: file?.language ?? null,
    transactional: isTransactional(entry),
    state,
    applied_at: ran?.appliedAt?.toISOString() ?? null,
    applied_by: ran?.appliedBy ?? null,
    execution_ms: ran?.executionMs ?? null,
    hold_reason: state === "held" ? holdReason(entry) : null,
    error: state === "failed" ? (record?.lastError ?? null) : null,
    interrupted: state === "failed" && record?.status === "running",
    checksum: { file: file?.checksum ?? null, recorded: record?.checksum ?? null },
    refusal: entry.refusal ? refusalDocument(entry.refusal) : null,
  };
}

/** classify gives every entry a file, a record or both; the file says how it would run now. */
function isTransactional(entry: MigrationEntry): boolean {
  return entry.file?.transactional ?? entry.record?.transactional ?? true;
}

function holdReason(entry: MigrationEntry): string {
  return entry.file?.holdReason ?? entry.record?.holdReason ?? "";
}

function statusText(entries: readonly MigrationEntry[], runs: readonly RunSummary[], drift: SchemaDrift | undefined): string {
  return [...migrationsText(entries), ...runsText(runs), ...driftText(drift)].join("\n");
}

function driftText(drift: SchemaDrift | undefined): string[] {
  if (!drift) return [];
  const since = drift.since ? ` since ${formatTime(drift.since)}` : "";
  return ["", `schema changed outside migrations${since}:`, ...drift.differences.map((difference) => `  ${difference}`)];
}

function runsText(runs: readonly RunSummary[]): string[] {
  if (runs.length === 0) return [];
  const rows = runs.map((run) => [
    formatTime(run.startedAt),
    run.command,
    run.outcome,
    run.applied === null ? "" : String(run.applied),
    [run.deploymentId ? `deployment ${run.deploymentId}` : run.appliedBy, run.lostAttempts > 0 ? `${plural(run.lostAttempts, "lost attempt")}` : "", run.errorMessage ? firstLine(run.errorMessage) : ""]
      .filter(Boolean)
      .join("; "),
  ]);
  return ["", "last runs:", ...formatTable(["STARTED", "COMMAND", "OUTCOME", "APPLIED", "DETAIL"], rows)];
}

function migrationsText(entries: readonly MigrationEntry[]): string[] {
  if (entries.length === 0) return ["no migrations: the folder has no migration files and the tracking table no rows"];
  const rows = entries.map((entry) => [
    String(entry.version).padStart(3, "0"),
    entry.file?.fileName ?? `${entry.name} (no file)`,
    isTransactional(entry) ? "transaction" : "no transaction",
    entry.state,
    DETAILS[entry.state](entry),
  ]);
  const lines = formatTable(["VERSION", "FILE", "MODE", "STATE", "DETAIL"], rows);
  const refusals = entries.flatMap((entry) => (entry.refusal ? [entry.refusal] : []));
  if (refusals.length > 0) lines.push("", `up would refuse (${plural(refusals.length, "problem")}):`, ...refusals.flatMap(refusalLines));
  return lines;
}

/** The DETAIL column: what a person needs to know about a migration in each state. */
const DETAILS: Record<MigrationStateName, (entry: MigrationEntry) => string> = {
  applied: ({ record }) => (record ? appliedDetail(record) : ""),
  pending: ({ outOfOrderReason }) => (outOfOrderReason === "released hold" ? "hold released; applies below the highest applied version" : ""),
  held: (entry) => `hold: ${holdReason(entry)}`,
  failed: ({ record }) => failedDetail(record),
  changed: ({ record, file }) => changedDetail(record, file?.name, file?.checksum),
  missing: ({ record }) => `file gone; ${record ? appliedDetail(record) : ""}`,
  out_of_order: ({ refusal }) => refusal?.message ?? "",
  record_lost: () => "applied, by the run history, but its row in the tracking table is gone",
};

function appliedDetail(record: MigrationRecord): string {
  const when = record.appliedAt ? ` ${formatTime(record.appliedAt)}` : "";
  const took = record.executionMs === null ? "" : ` in ${formatDuration(record.executionMs)}`;
  return `applied${when} by ${record.appliedBy}${took}`;
}

function failedDetail(record: MigrationRecord | undefined): string {
  if (record?.status === "running") return `interrupted part-way (run by ${record.appliedBy})`;
  const error = record?.lastError ?? "no error recorded";
  const leftover = INVALID_INDEX_NOTE.exec(error)?.[0];
  return `failed part-way: ${firstLine(error)}${leftover ? `; ${leftover}` : ""}`;
}

function changedDetail(record: MigrationRecord | undefined, fileName: string | undefined, fileChecksum: string | undefined): string {
  if (record && fileName !== record.name) return `renamed from ${record.name}`;
  return `checksum ${shortChecksum(record?.checksum)} recorded, the file now has ${shortChecksum(fileChecksum)}`;
}

function shortChecksum(checksum: string | undefined): string {
  return `${(checksum ?? "").slice(0, SHORT_CHECKSUM_LENGTH)}…`;
}

/** How a failure message names what a failed CREATE INDEX CONCURRENTLY left behind (see runner.ts). */
const INVALID_INDEX_NOTE = /left the invalid index(?:es)? \S+(?:, \S+)* behind/;

/** UTC, to the second: the same text whatever the time zone of the machine that runs status. */
function formatTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}
