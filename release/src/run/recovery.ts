/**
 * The repair for a migration that failed part-way (a no-transaction file, or one whose work escaped
 * its transaction), chosen from what it left in the database rather than guessed: a file of
 * concurrent index builds whose indexes all exist and are valid finished its work (record it), one
 * whose indexes are all invalid or absent can run again once the invalid ones are dropped. Anything
 * else needs a person to look.
 */
import type { Queryable } from "../database/database.ts";
import { concurrentIndexTargets, indexBuildStates, type IndexBuildState } from "../database/invalid-indexes.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { SqlParser } from "../files/sql-statements.ts";
import type { MigrationRecord } from "../database/storage.ts";

export type RecoveryAction = "applied" | "rolled-back";

export interface RecoveryAdvice {
  /** The one resolve action the facts call for; none when only a person can tell. */
  readonly action: RecoveryAction | undefined;
  /** The facts, for the message: "its index public.idx is valid". */
  readonly facts: string;
}

const UNKNOWN: RecoveryAdvice = { action: undefined, facts: "" };

export async function adviseRecovery(sql: Queryable, file: MigrationFile, parser: SqlParser): Promise<RecoveryAdvice> {
  if (file.language !== "sql") return UNKNOWN;
  const statements = parser.statements(file);
  const targets = concurrentIndexTargets(statements);
  // Only a file that does nothing but build indexes concurrently can be judged from its indexes.
  if (targets.length === 0 || targets.length !== statements.length || targets.some((target) => target.name === null)) return UNKNOWN;
  const states = await indexBuildStates(sql, targets);
  const named = targets.map((target) => ({ name: target.name!, state: states.get(target.name!) ?? "missing" }));
  const facts = named.map(({ name, state }) => `${name} is ${describeState(state)}`).join(", ");
  if (named.every(({ state }) => state === "valid")) return { action: "applied", facts: `every index it builds exists and is valid (${facts}), so its work is done` };
  if (named.every(({ state }) => state !== "valid")) return { action: "rolled-back", facts: `none of its indexes is valid (${facts})` };
  return { action: undefined, facts: `some of its indexes were built and some were not (${facts})` };
}

function describeState(state: IndexBuildState): string {
  return state === "missing" ? "absent" : state;
}

/** Advice for every version recorded as running or failed whose file is present: no query when there is none. */
export async function adviseRecoveries(
  sql: Queryable,
  files: readonly MigrationFile[],
  records: readonly MigrationRecord[],
  loadParser: () => Promise<SqlParser>,
): Promise<Map<number, RecoveryAdvice>> {
  const advice = new Map<number, RecoveryAdvice>();
  const failed = records.filter((record) => record.status === "running" || record.status === "failed");
  for (const record of failed) {
    const file = files.find((candidate) => candidate.version === record.version);
    if (file) advice.set(record.version, await adviseRecovery(sql, file, await loadParser()));
  }
  return advice;
}
