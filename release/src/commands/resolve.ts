/**
 * `resolve <version> <action>`: the explicit way out of every refusal about history, so nobody has
 * to write SQL against the tracking table by hand.
 */
import { ExitCode, RefusedError } from "../shared/errors.ts";
import { fixCommand } from "../shared/invocation.ts";
import { recoveryResolution } from "../run/migration-state.ts";
import { adviseRecovery } from "../run/recovery.ts";
import { readRecordedState } from "../run/recorded-state.ts";
import type { ResolveAction } from "../shared/config.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import { concurrentIndexTargets, dropInvalidIndexes, findInvalidIndexes } from "../database/invalid-indexes.ts";
import type { MigrationRecord, MigrationStatus } from "../database/storage.ts";
import type { LockedRun } from "./context.ts";

export interface ResolveOptions {
  readonly version: number;
  readonly action: ResolveAction;
}

const FAILED_PART_WAY = "a migration that failed part-way (a no-transaction file, or one whose work escaped its transaction)";

/** Which recorded states each action settles, and what it needs of the file. */
const ACTIONS: Record<ResolveAction, { from: readonly MigrationStatus[]; file: "present" | "absent"; when: string }> = {
  "rolled-back": { from: ["running", "failed"], file: "present", when: FAILED_PART_WAY },
  applied: { from: ["running", "failed"], file: "present", when: `${FAILED_PART_WAY}, or one whose row the run history says was lost` },
  "accept-checksum": { from: ["applied"], file: "present", when: "an applied migration whose file changed" },
  forget: { from: ["applied"], file: "absent", when: "an applied migration whose file was deleted" },
};

export async function resolve(run: LockedRun, { version, action }: ResolveOptions): Promise<ExitCode> {
  const { storage, sql, logger } = run;
  const { records, facts } = await readRecordedState(sql, run);
  const record = records.find((candidate) => candidate.version === version);
  // A row the run history says was applied, now gone: --applied writes it back, running nothing.
  const lostRow = !record && action === "applied" && facts.evidence?.versions.has(version) === true;
  const file = run.files.find((candidate) => candidate.version === version);
  const rule = ACTIONS[action];
  const refuse = (message: string, resolution: string) => {
    throw new RefusedError([{ check: "resolve", file: file?.fileName ?? record?.name ?? `version ${version}`, message, resolution }]);
  };

  if (!lostRow && (!record || !rule.from.includes(record.status))) {
    refuse(`--${action} is for ${rule.when}, but version ${version} is ${describe(record)}`, `see where every migration stands, and the repair each needs, with: ${fixCommand(`status`)}`);
  }
  if (rule.file === "present" && !file) refuse(`--${action} needs the migration's file, and there is none with version ${version}`, "restore the file from version control");
  if (rule.file === "absent" && file) refuse(`--forget is for a deleted file, but ${file.fileName} exists`, `if the file changed, use ${fixCommand(`resolve ${version} --accept-checksum`)}`);
  if (action === "applied" || action === "rolled-back") {
    const advice = await adviseRecovery(sql, file!, await run.loadParser());
    if (advice.action && advice.action !== action) refuse(`--${action} does not fit what ${file!.fileName} left: ${advice.facts}`, recoveryResolution(version, advice));
  }

  run.history.markValidated();
  if (lostRow) await storage.ensureTable(sql);
  await APPLY[action](run, version, file!);

  logger.info("resolved", `resolved version ${version} (${file?.name ?? record!.name}) with --${action}: ${OUTCOME[action]}`, { version, action });
  return ExitCode.success;
}

const APPLY: Record<ResolveAction, (run: LockedRun, version: number, file: MigrationFile) => Promise<number>> = {
  "rolled-back": async (run, _version, file) => {
    await dropLeftoverIndexes(run, file);
    return run.storage.recordRolledBack(run.sql, file);
  },
  applied: ({ storage, sql }, _version, file) => storage.recordApplied(sql, file),
  "accept-checksum": ({ storage, sql }, _version, file) => storage.acceptChecksum(sql, file),
  forget: ({ storage, sql }, version) => storage.forget(sql, version),
};

const OUTCOME: Record<ResolveAction, string> = {
  "rolled-back": "the next run applies it again",
  applied: "recorded as applied with the file's current checksum",
  "accept-checksum": "the file's current checksum is recorded",
  forget: "its record is removed; the schema it created is untouched",
};

function describe(record: MigrationRecord | undefined): string {
  if (!record) return "not recorded in the tracking table";
  return `recorded as ${record.status}`;
}

/** The invalid indexes a failed CREATE INDEX CONCURRENTLY left would make the retry fail: drop them first. */
async function dropLeftoverIndexes(run: LockedRun, file: MigrationFile): Promise<void> {
  if (file.language !== "sql") return;
  const statements = (await run.loadParser()).statements(file);
  const invalid = await findInvalidIndexes(run.sql, concurrentIndexTargets(statements));
  // DROP INDEX is the one schema change resolve makes: it runs where migration SQL runs, under its statement_timeout.
  if (invalid.length > 0) await dropInvalidIndexes((await run.migrationWork()).sql, invalid);
  for (const name of invalid) {
    run.logger.info("invalid_index_dropped", `dropped the invalid index ${name} that ${file.fileName} left behind, so the retry can build it`, { index: name, file: file.fileName });
  }
}
