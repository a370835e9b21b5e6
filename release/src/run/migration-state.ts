/**
 * Compares the migration files with the tracking table. `classify` gives every version either side
 * knows one state; `up`, `status` and `plan` all derive what they do and say from it, so they can
 * never disagree about a migration.
 */
import type { Refusal } from "../shared/errors.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { MigrationRecord } from "../database/storage.ts";
import type { RecoveryAdvice } from "./recovery.ts";
import type { AppliedEvidence } from "../database/run-history.ts";
import { fixCommand } from "../shared/invocation.ts";

export type MigrationStateName = "applied" | "pending" | "held" | "failed" | "changed" | "missing" | "out_of_order" | "record_lost";

export interface MigrationEntry {
  readonly version: number;
  readonly name: string;
  readonly state: MigrationStateName;
  readonly file: MigrationFile | undefined;
  readonly record: MigrationRecord | undefined;
  /** Set for a pending version below the highest applied one that may still apply. */
  readonly outOfOrderReason?: "released hold" | "allowed by flag";
  /** Why the state stops `up`, with the command that resolves it. */
  readonly refusal?: Refusal;
}

export interface StateOptions {
  readonly allowOutOfOrder: boolean;
  /** What the database says about each migration that failed part-way, to choose its repair (recovery.ts). */
  readonly recovery?: ReadonlyMap<number, RecoveryAdvice>;
  /** What the last validated run recorded as applied (run-history.ts): a version it names needs its row. */
  readonly evidence?: AppliedEvidence | undefined;
  /** False when the tracking table does not exist at all (no records either way). */
  readonly trackingTable?: boolean;
}

/** Every version the files or the tracking table know, by version. */
export function classify(files: readonly MigrationFile[], records: readonly MigrationRecord[], options: StateOptions): MigrationEntry[] {
  const fileByVersion = new Map(files.map((file) => [file.version, file]));
  const recordByVersion = new Map(records.map((record) => [record.version, record]));
  const highestApplied = highestAppliedVersion(records);
  const versions = [...new Set([...fileByVersion.keys(), ...recordByVersion.keys(), ...(options.evidence?.versions ?? [])])].sort((a, b) => a - b);
  return versions.map((version) => {
    const file = fileByVersion.get(version);
    const record = recordByVersion.get(version);
    const name = file?.name ?? record?.name ?? `version ${version}`;
    const entry = { version, name, file, record };
    if (record?.status === "applied") return { ...entry, ...appliedState(record, file) };
    if (!record && options.evidence?.versions.has(version)) {
      const refusal = lostRecordRefusal(version, file, options);
      return { ...entry, state: "record_lost", ...(refusal ? { refusal } : {}) };
    }
    if (record?.status === "running" || record?.status === "failed") {
      return { ...entry, state: "failed", refusal: failedRefusal(record, file, options.recovery?.get(version)) };
    }
    if (!file) return { ...entry, state: "held" }; // a held record whose file is gone: nothing to do
    if (file.holdReason !== undefined) return { ...entry, state: "held" };
    if (highestApplied === undefined || version > highestApplied) return { ...entry, state: "pending" };
    if (record?.status === "held") return { ...entry, state: "pending", outOfOrderReason: "released hold" };
    if (options.allowOutOfOrder) return { ...entry, state: "out_of_order", outOfOrderReason: "allowed by flag" };
    return { ...entry, state: "out_of_order", refusal: outOfOrderRefusal(file, highestApplied, fileByVersion.get(highestApplied)) };
  });
}

export interface UpPlan {
  /** Files to apply, in version order. */
  readonly pending: readonly MigrationFile[];
  /** Files kept back by `-- migrate:hold`. */
  readonly held: readonly MigrationFile[];
  /** Pending versions below the highest applied one that may still apply. */
  readonly outOfOrder: readonly MigrationEntry[];
  readonly refusals: readonly Refusal[];
  readonly highestApplied: number | undefined;
}

/** What `up` would do now, given the classified entries. */
export function planUp(entries: readonly MigrationEntry[]): UpPlan {
  const runnable = entries.filter((entry) => (entry.state === "pending" || entry.state === "out_of_order") && !entry.refusal);
  return {
    pending: runnable.map((entry) => entry.file!),
    held: entries.filter((entry) => entry.state === "held" && entry.file).map((entry) => entry.file!),
    outOfOrder: runnable.filter((entry) => entry.outOfOrderReason),
    refusals: entries.flatMap((entry) => (entry.refusal ? [entry.refusal] : [])),
    highestApplied: highestAppliedVersion(entries.flatMap((entry) => (entry.record ? [entry.record] : []))),
  };
}

function highestAppliedVersion(records: readonly MigrationRecord[]): number | undefined {
  const applied = records.filter((record) => record.status === "applied").map((record) => record.version);
  return applied.length > 0 ? Math.max(...applied) : undefined;
}

function appliedState(record: MigrationRecord, file: MigrationFile | undefined): Pick<MigrationEntry, "state" | "refusal"> {
  if (!file) {
    return {
      state: "missing",
      refusal: {
        check: "missing",
        file: `${record.name}.sql`,
        message: `applied migration ${record.name} has no file any more`,
        resolution: `restore the file from version control; if it was deleted on purpose, drop its record with: ${fixCommand(`resolve ${record.version} --forget`)}`,
      },
    };
  }
  if (file.checksum === record.checksum && file.name === record.name) return { state: "applied" };
  const what = file.name === record.name ? "was changed after it was applied (checksum differs)" : `was renamed from ${record.name} after it was applied`;
  return {
    state: "changed",
    refusal: {
      check: "drift",
      file: file.fileName,
      message: `applied migration ${what}`,
      resolution: `restore the applied version from version control and put the change in a new migration; if the edit is deliberate and harmless (a comment), record it with: ${fixCommand(`resolve ${record.version} --accept-checksum`)}`,
    },
  };
}

function failedRefusal(record: MigrationRecord, file: MigrationFile | undefined, advice: RecoveryAdvice | undefined): Refusal {
  const how = record.status === "running" ? "was interrupted part-way (the run stopped before it finished)" : `failed part-way${record.lastError ? `: ${record.lastError.split("\n")[0]}` : ""}`;
  return {
    check: "failed",
    file: file?.fileName ?? `${record.name}.sql`,
    message: record.transactional
      ? `migration ${how}, and part of its work was committed outside its transaction`
      : `no-transaction migration ${how}; some of its statements may have been applied`,
    resolution: recoveryResolution(record.version, advice),
  };
}

/** The one command the facts call for, or, when only a person can tell, the two and how to choose. */
export function recoveryResolution(version: number, advice: RecoveryAdvice | undefined): string {
  const facts = advice?.facts ? `${advice.facts}; ` : "";
  if (advice?.action === "applied") return `${facts}record it as applied without running it again: ${fixCommand(`resolve ${version} --applied`)}`;
  if (advice?.action === "rolled-back") return `${facts}drop what the builds left and let the next run build them again: ${fixCommand(`resolve ${version} --rolled-back`)}`;
  return (
    `${facts}inspect the database, then either undo what it did and retry it on the next run: ${fixCommand(`resolve ${version} --rolled-back`)}; ` +
    `or finish it by hand and record it: ${fixCommand(`resolve ${version} --applied`)}`
  );
}

/**
 * The run history says this version was applied, and its row is gone: running the file again could
 * repeat its work (a data migration twice). One repair per row, or, when the whole table is gone,
 * one baseline that records them all after checking the schema.
 */
function lostRecordRefusal(version: number, file: MigrationFile | undefined, options: StateOptions): Refusal | undefined {
  const evidence = options.evidence!;
  const recorded = `run #${evidence.runId} of the run history, which ended ${evidence.finishedAt.toISOString()}, recorded it as applied`;
  if (options.trackingTable === false) {
    // Said once, on the highest such version: the one command records them all.
    const highest = Math.max(...evidence.versions);
    if (version !== highest) return undefined;
    return {
      check: "record_lost",
      file: file?.fileName ?? `version ${version}`,
      message: `the tracking table is missing, but run #${evidence.runId} of the run history (ended ${evidence.finishedAt.toISOString()}) recorded versions ${[...evidence.versions].join(", ")} as applied: applying them again could repeat their work`,
      resolution: `record them again without running them, after a check that the schema is what they build: ${fixCommand(`baseline --to ${highest}`)}`,
    };
  }
  return {
    check: "record_lost",
    file: file?.fileName ?? `version ${version}`,
    message: `version ${version} has no row in the tracking table, but ${recorded}: applying it again could repeat its work`,
    resolution: `if the database still has what it did, record it without running it: ${fixCommand(`resolve ${version} --applied`)}`,
  };
}

function outOfOrderRefusal(file: MigrationFile, highestApplied: number, highestFile: MigrationFile | undefined): Refusal {
  const highest = highestFile?.fileName ?? `version ${highestApplied}`;
  return {
    check: "order",
    file: file.fileName,
    message: `version ${file.version} is pending but a higher version, ${highest}, is already applied`,
    resolution: `renumber ${file.fileName} above ${highestApplied}, or apply it out of order on purpose with: ${fixCommand(`up --allow-out-of-order`)}`,
  };
}
