/**
 * Taking a snapshot from a database, and the two forms it is kept in: its hash, to tell two
 * snapshots apart at a glance, and its jsonb form in the run history, read back here for
 * comparison. The cheaper check of whether the schema changed at all is catalog-signal.ts.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { isSession, type Queryable } from "../database.ts";
import { canonicalJson, compareNames } from "./canonical-form.ts";
import { SNAPSHOT_QUERY } from "./catalog-queries.ts";
import { eachSection, KINDS, withoutExcluded } from "./kinds.ts";
import { SNAPSHOT_FORMAT, type SchemaSnapshot, type SnapshotOptions, type SnapshotSection } from "./types.ts";

/**
 * Reads the snapshot in one statement, so it is consistent without a stricter isolation level.
 * Given a session (`Sql`), it runs in a read-only transaction of its own; given a transaction, it
 * runs inside it (seeing that transaction's own changes, a migration's before it commits) and
 * leaves its search_path as it found it.
 */
export async function takeSnapshot(sql: Queryable, options: SnapshotOptions): Promise<SchemaSnapshot> {
  // SET LOCAL ends with the transaction, so a transaction of our own needs no restoring.
  if (isSession(sql)) return sql.begin("read only", (tx) => readSnapshot(tx, options));
  const [setting] = await sql<{ search_path: string }[]>`select current_setting('search_path') as search_path`;
  try {
    return await readSnapshot(sql, options);
  } finally {
    await sql`select set_config('search_path', ${setting!.search_path}, true)`;
  }
}

/** sha256 (hex) of the snapshot's canonical JSON: equal for equal snapshots, also after a jsonb round trip. */
export function snapshotHash(snapshot: SchemaSnapshot): string {
  return createHash("sha256").update(canonicalJson(snapshot)).digest("hex");
}

/**
 * A snapshot read back from storage (the run history's jsonb), or undefined when it was written
 * in another format: then it cannot be compared, and the caller should take a new baseline
 * rather than report every object as changed.
 */
export function parseStoredSnapshot(stored: unknown): SchemaSnapshot | undefined {
  const parsed = StoredSnapshotSchema.safeParse(stored);
  return parsed.success ? (parsed.data as unknown as SchemaSnapshot) : undefined;
}

type CatalogRows = { readonly [S in SnapshotSection]: SchemaSnapshot[S] } & { readonly excluded: readonly { readonly name: string }[] };

/**
 * PostgreSQL's deparsers (pg_get_indexdef, format_type, …) leave out the schema of whatever the
 * search_path can see, so the same index would read differently in two sessions. With an empty
 * search_path every name is qualified (pg_catalog is still searched, implicitly), as in pg_dump.
 */
async function readSnapshot(sql: Queryable, options: SnapshotOptions): Promise<SchemaSnapshot> {
  await sql`select set_config('search_path', '', true)`;
  const [row] = await sql.unsafe<{ snapshot: string }[]>(SNAPSHOT_QUERY, [JSON.stringify(options.exclude)]);
  const rows = JSON.parse(row!.snapshot) as CatalogRows;
  const snapshot = eachSection({ format: SNAPSHOT_FORMAT, ...rows }, (entries) => [...entries].sort((a, b) => compareNames(a.name, b.name)));
  return withoutExcluded(snapshot, new Set(rows.excluded.map((table) => table.name)));
}

const StoredValueSchema = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);
const StoredEntrySchema = z.record(z.string(), StoredValueSchema).refine((entry) => typeof entry.name === "string", "every entry has a name");
/** The shape every snapshot has; the attributes of each kind were written by this module in this format. */
const StoredSnapshotSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  ...Object.fromEntries(KINDS.map((info) => [info.section, z.array(StoredEntrySchema)])),
});
