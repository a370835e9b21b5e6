/**
 * Schema drift: a change made outside migrations. Every successful run that changes the database
 * records the schema it left in the run history (hash and snapshot); the next `up` compares the
 * live schema with it before applying anything. A difference is a warning naming what changed, or
 * with --strict-drift (MIGRATE_STRICT_DRIFT=1) a refusal. `status` shows it too.
 *
 * A drift is reported by the runs that meet it until one of them succeeds: that run records the
 * schema as it then is, drift included.
 */
import { describeDifference, diffSnapshots } from "./schema-snapshot/diff.ts";
import { parseStoredSnapshot, snapshotHash, takeSnapshot } from "./schema-snapshot/snapshot.ts";
import { catalogSignal } from "./schema-snapshot/catalog-signal.ts";
import { fixCommand } from "../shared/invocation.ts";
import type { Refusal } from "../shared/errors.ts";
import type { TableName } from "../shared/config.ts";
import { isSession, type Queryable } from "./database.ts";
import type { SchemaSnapshot } from "./schema-snapshot/types.ts";
import type { RecordedSchema, RunHistory } from "./run-history.ts";

export interface SchemaDrift {
  /** When the run that recorded the expected schema ended. */
  readonly since: Date | undefined;
  /** One readable line per difference, e.g. "column platform.users.nickname added (text, nullable)". */
  readonly differences: readonly string[];
}

/** The job's own bookkeeping is not part of the schema it checks. */
export function bookkeepingTables(table: TableName): string[] {
  return [`${table.schema}.${table.table}`, `${table.schema}.${table.table}_runs`];
}

/**
 * The live schema, in the form the run history keeps: the snapshot, and the catalog signal as its
 * fingerprint. Both are read in one snapshot of the database, so that a change made between the
 * two reads can never hide behind a signal that already includes it.
 */
export async function liveSchema(sql: Queryable, table: TableName): Promise<RecordedSchema & { readonly snapshot: SchemaSnapshot }> {
  const read = async (tx: Queryable) => {
    const fingerprint = await catalogSignal(tx);
    const snapshot = await takeSnapshot(tx, { exclude: bookkeepingTables(table) });
    return { hash: snapshotHash(snapshot), fingerprint, snapshot };
  };
  return isSession(sql) ? sql.begin("isolation level repeatable read read only", read) : read(sql);
}

export interface SchemaCheck {
  /** The live schema, when there was a recorded one to compare it with. */
  readonly live: RecordedSchema | undefined;
  /** How it differs from the recorded one; undefined when it does not. */
  readonly drift: SchemaDrift | undefined;
}

/** The cheap half of a schema check: the schema the last successful run recorded, and the live catalog signal. */
export interface SchemaProbe {
  readonly expected: RecordedSchema | undefined;
  readonly signal: string;
}

/**
 * Sends the probe's two statements at once. A caller that starts it beside its other reads pays no
 * round trip of its own for the usual deploy, where the signal settles the check.
 */
export async function probeSchema(sql: Queryable, history: RunHistory): Promise<SchemaProbe> {
  const [expected, signal] = await Promise.all([history.lastSchema(sql), catalogSignal(sql)]);
  return { expected, signal };
}

/** Compares the live schema with the one the last successful run recorded (nothing to compare before the first). */
export async function checkSchema(sql: Queryable, history: RunHistory, table: TableName, probe = probeSchema(sql, history)): Promise<SchemaCheck> {
  const { expected, signal } = await probe;
  if (!expected) return { live: undefined, drift: undefined };
  // The usual deploy: no catalog row changed since the last run, so neither did the schema.
  if (signal === expected.fingerprint) return { live: { hash: expected.hash, fingerprint: expected.fingerprint }, drift: undefined };

  const { hash, fingerprint, snapshot } = await liveSchema(sql, table);
  // Catalog rows changed, the schema did not: the snapshot is stored already, the new signal is recorded.
  if (hash === expected.hash) return { live: { hash, fingerprint }, drift: undefined };
  const live = { hash, fingerprint, snapshot };
  const expectedSnapshot = parseStoredSnapshot(await history.storedSnapshot(sql, expected.hash));
  // Recorded in another snapshot format (an older job): nothing to compare with until this run records anew.
  if (!expectedSnapshot) return { live, drift: undefined };
  return { live, drift: { since: expected.recordedAt, differences: diffSnapshots(expectedSnapshot, snapshot).map(describeDifference) } };
}

export async function findDrift(sql: Queryable, history: RunHistory, table: TableName): Promise<SchemaDrift | undefined> {
  return (await checkSchema(sql, history, table)).drift;
}

export function driftSummary(drift: SchemaDrift): string {
  const since = drift.since ? ` since the last successful run (${drift.since.toISOString()})` : "";
  return `the schema was changed outside migrations${since}: ${drift.differences.join("; ")}`;
}

export function driftRefusal(drift: SchemaDrift): Refusal {
  return {
    check: "schema_drift",
    file: "(database schema)",
    message: driftSummary(drift),
    resolution:
      "put the change in a migration (or undo it by hand); to accept the schema as it is now, run " +
      `${fixCommand(`up`)} once without --strict-drift and MIGRATE_STRICT_DRIFT: it warns and records the schema`,
  };
}
