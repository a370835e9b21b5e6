/**
 * What the database holds about the migrations: the tracking rows, whether the tracking table
 * exists at all, what the run history says was applied (the evidence a lost row is found by), and,
 * for each migration that failed part-way, the facts that choose its repair. Every command
 * classifies from this one reading, so up, status and plan never disagree.
 */
import type { Queryable } from "../database/database.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { StateOptions } from "./migration-state.ts";
import { adviseRecoveries } from "./recovery.ts";
import type { RunHistory } from "../database/run-history.ts";
import type { SqlParser } from "../files/sql-statements.ts";
import type { MigrationRecord, MigrationStorage } from "../database/storage.ts";

export interface RecordedState {
  readonly records: readonly MigrationRecord[];
  /** What classify weighs the records against. */
  readonly facts: Required<Pick<StateOptions, "recovery" | "trackingTable">> & Pick<StateOptions, "evidence">;
}

export interface StateSources {
  readonly files: readonly MigrationFile[];
  readonly storage: MigrationStorage;
  readonly history: RunHistory;
  readonly loadParser: () => Promise<SqlParser>;
}

export async function readRecordedState(sql: Queryable, sources: StateSources): Promise<RecordedState> {
  const [trackingTable, records, evidence] = await Promise.all([
    sources.storage.exists(sql),
    sources.storage.records(sql),
    sources.history.appliedEvidence(sql),
  ]);
  const recovery = await adviseRecoveries(sql, sources.files, records, sources.loadParser);
  return { records, facts: { recovery, evidence, trackingTable } };
}
