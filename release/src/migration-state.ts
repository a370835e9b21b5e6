/**
 * Compares the migration files with the tracking table and decides what `up` may do: which files
 * are pending, which are held, and every reason to refuse the run before anything is applied.
 */
import type { Refusal } from "./errors.ts";
import type { MigrationFile } from "./migration-files.ts";
import type { MigrationRecord } from "./storage.ts";

export const COMMAND = "bun release/migrate.ts";

export interface StateOptions {
  readonly allowOutOfOrder: boolean;
}

export interface MigrationState {
  /** Files to apply, in version order. */
  readonly pending: readonly MigrationFile[];
  /** Files kept back by `-- migrate:hold`. */
  readonly held: readonly MigrationFile[];
  /** Pending versions below the highest applied one that may still apply, with the reason. */
  readonly outOfOrder: readonly { readonly file: MigrationFile; readonly reason: "released hold" | "allowed by flag" }[];
  readonly refusals: readonly Refusal[];
  readonly highestApplied: number | undefined;
}

export function assessState(files: readonly MigrationFile[], records: readonly MigrationRecord[], options: StateOptions): MigrationState {
  const fileByVersion = new Map(files.map((file) => [file.version, file]));
  const recordByVersion = new Map(records.map((record) => [record.version, record]));
  const refusals: Refusal[] = [];

  for (const record of records) {
    const file = fileByVersion.get(record.version);
    if (record.status === "applied") refusals.push(...historyRefusals(record, file));
    if (record.status === "running" || record.status === "failed") refusals.push(failedRefusal(record, file));
  }

  const applied = records.filter((record) => record.status === "applied").map((record) => record.version);
  const highestApplied = applied.length > 0 ? Math.max(...applied) : undefined;
  const held = files.filter((file) => file.holdReason !== undefined);
  const pending: MigrationFile[] = [];
  const outOfOrder: MigrationState["outOfOrder"][number][] = [];

  for (const file of files) {
    const status = recordByVersion.get(file.version)?.status;
    if (file.holdReason !== undefined || (status !== undefined && status !== "held")) continue;
    pending.push(file);
    if (highestApplied === undefined || file.version > highestApplied) continue;
    if (status === "held") outOfOrder.push({ file, reason: "released hold" });
    else if (options.allowOutOfOrder) outOfOrder.push({ file, reason: "allowed by flag" });
    else refusals.push(outOfOrderRefusal(file, highestApplied, fileByVersion.get(highestApplied)));
  }

  return { pending, held, outOfOrder, refusals, highestApplied };
}

function historyRefusals(record: MigrationRecord, file: MigrationFile | undefined): Refusal[] {
  if (!file) {
    return [
      {
        check: "missing",
        file: `${record.name}.sql`,
        message: `applied migration ${record.name} has no file any more`,
        resolution: `restore the file from version control; if it was deleted on purpose, drop its record with: ${COMMAND} resolve ${record.version} --forget`,
      },
    ];
  }
  if (file.checksum === record.checksum && file.name === record.name) return [];
  const what = file.name === record.name ? "was changed after it was applied (checksum differs)" : `was renamed from ${record.name}.sql after it was applied`;
  return [
    {
      check: "drift",
      file: file.fileName,
      message: `applied migration ${what}`,
      resolution: `restore the applied version from version control and put the change in a new migration; if the edit is deliberate and harmless (a comment), record it with: ${COMMAND} resolve ${record.version} --accept-checksum`,
    },
  ];
}

function failedRefusal(record: MigrationRecord, file: MigrationFile | undefined): Refusal {
  const how = record.status === "running" ? "was interrupted part-way (the run stopped before it finished)" : `failed part-way${record.lastError ? `: ${record.lastError.split("\n")[0]}` : ""}`;
  return {
    check: "failed",
    file: file?.fileName ?? `${record.name}.sql`,
    message: `no-transaction migration ${how}; some of its statements may have been applied`,
    resolution:
      `inspect the database, then either undo what it did and retry it on the next run: ${COMMAND} resolve ${record.version} --rolled-back; ` +
      `or finish it by hand and record it: ${COMMAND} resolve ${record.version} --applied`,
  };
}

function outOfOrderRefusal(file: MigrationFile, highestApplied: number, highestFile: MigrationFile | undefined): Refusal {
  const highest = highestFile?.fileName ?? `version ${highestApplied}`;
  return {
    check: "order",
    file: file.fileName,
    message: `version ${file.version} is pending but a higher version, ${highest}, is already applied`,
    resolution: `renumber ${file.fileName} above ${highestApplied}, or apply it out of order on purpose with: ${COMMAND} up --allow-out-of-order`,
  };
}
