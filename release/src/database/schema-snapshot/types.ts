/**
 * The schema as data: everything a migration can change in the managed schemas, as a normalised,
 * deterministic, JSON-serializable snapshot. Two databases with the same schema give equal
 * snapshots (and equal hashes); two snapshots compare into a readable list of differences.
 *
 * Used by `verify-rollbacks` (does a rollback restore the schema?) and by drift detection (did the
 * schema change outside migrations since the last run?), which stores snapshots as jsonb: so every
 * value is a string, number, boolean, null or array of strings, and keys are snake_case like the
 * job's other JSON documents.
 *
 * Normalised means: objects are named, never identified by oid; names are quoted as SQL quotes
 * them (`format('%I')`); definitions come from PostgreSQL's own deparsers under an empty
 * search_path, so every name in them is schema-qualified whatever the session's search_path;
 * default privileges are made explicit (a NULL ACL and the same ACL written out compare equal);
 * lists are sorted in the "C" collation. Nothing that differs between two databases with the
 * same schema is read: no oids, row counts, sequence values, sizes, timestamps or database names.
 * Owners and grantees are role names: part of the schema (a SECURITY DEFINER function runs as its
 * owner), and the same wherever the same role runs the migrations.
 */

/**
 * Bumped whenever what a snapshot contains changes, so that a snapshot stored by an older job is
 * recognised as incomparable rather than reported as drift.
 */
export const SNAPSHOT_FORMAT = 1;

export type SnapshotValue = string | number | boolean | null | readonly string[];

/** One object. `name` is unique within its kind: schema-qualified, and for functions with argument types. */
export interface SnapshotEntry {
  readonly name: string;
  readonly [attribute: string]: SnapshotValue;
}

export interface SchemaEntry extends SnapshotEntry {
  readonly owner: string;
}

export interface ExtensionEntry extends SnapshotEntry {
  readonly version: string;
  readonly schema: string;
}

/** Enums, domains, composite and range types (a table's row type belongs to the table). */
export interface TypeEntry extends SnapshotEntry {
  readonly kind: "enum" | "domain" | "composite" | "range";
  readonly owner: string;
  /** Enum labels in order, a domain's base type with NOT NULL and DEFAULT, a composite's attributes, a range's subtype. */
  readonly definition: string;
}

/** Tables, partitioned tables, their partitions, and foreign tables. */
export interface TableEntry extends SnapshotEntry {
  readonly kind: "table" | "partitioned table" | "foreign table";
  readonly owner: string;
  readonly unlogged: boolean;
  readonly row_security: boolean;
  readonly force_row_security: boolean;
  /** Parent tables in inheritance order; a partition's one parent is its partitioned table. */
  readonly parents: readonly string[];
  readonly partition_bound: string | null;
  readonly partition_key: string | null;
  /** Storage parameters (`fillfactor=70`), sorted. */
  readonly options: readonly string[];
}

export interface ColumnEntry extends SnapshotEntry {
  readonly table: string;
  /** 1-based among the table's live columns: what `select *` and `insert … values` see. */
  readonly position: number;
  readonly type: string;
  readonly nullable: boolean;
  readonly default: string | null;
  readonly identity: "always" | "by default" | null;
  /** The expression of a generated column, with `stored` or `virtual`. */
  readonly generated: string | null;
  /** Only when it differs from the type's own collation. */
  readonly collation: string | null;
}

/** Table and domain constraints. NOT NULL is a column's (or domain's) nullability, not listed here. */
export interface ConstraintEntry extends SnapshotEntry {
  readonly table: string | null;
  readonly domain: string | null;
  readonly type: "primary key" | "unique" | "foreign key" | "check" | "exclusion" | "trigger";
  readonly definition: string;
  readonly validated: boolean;
}

export interface IndexEntry extends SnapshotEntry {
  readonly table: string;
  readonly definition: string;
  readonly unique: boolean;
  /** False for an index a failed CREATE INDEX CONCURRENTLY left behind. */
  readonly valid: boolean;
}

/** Its settings; never its current value, which differs between databases with the same schema. */
export interface SequenceEntry extends SnapshotEntry {
  readonly owner: string;
  readonly type: string;
  /** Numbers as text: bigint bounds do not fit a JavaScript number. */
  readonly start: string;
  readonly increment: string;
  readonly min: string;
  readonly max: string;
  readonly cache: string;
  readonly cycle: boolean;
  /** The column that owns it (identity and serial columns): `schema.table.column`. */
  readonly owned_by: string | null;
}

export interface ViewEntry extends SnapshotEntry {
  readonly kind: "view" | "materialized view";
  readonly owner: string;
  readonly definition: string;
  readonly options: readonly string[];
}

/** Functions and procedures (aggregates and window functions too); named with their argument types. */
export interface FunctionEntry extends SnapshotEntry {
  readonly kind: "function" | "procedure" | "aggregate" | "window function";
  readonly owner: string;
  /** With names and defaults, as `\df` shows them. */
  readonly arguments: string;
  readonly result: string | null;
  readonly language: string;
  readonly volatility: "immutable" | "stable" | "volatile";
  readonly parallel: "safe" | "restricted" | "unsafe";
  readonly strict: boolean;
  readonly security_definer: boolean;
  /** `SET` clauses (`search_path=pg_catalog, platform`), sorted. */
  readonly config: readonly string[];
  /** sha256 of the body as stored, so a changed body shows without storing it. */
  readonly body_sha256: string;
}

export interface TriggerEntry extends SnapshotEntry {
  readonly table: string;
  readonly definition: string;
  readonly enabled: "enabled" | "disabled" | "replica" | "always";
}

export interface PolicyEntry extends SnapshotEntry {
  readonly table: string;
  readonly mode: "permissive" | "restrictive";
  readonly command: "all" | "select" | "insert" | "update" | "delete";
  readonly roles: readonly string[];
  readonly using: string | null;
  readonly with_check: string | null;
}

/** What one role (or PUBLIC) may do with one object; default privileges are written out. */
export interface GrantEntry extends SnapshotEntry {
  readonly object_kind: "schema" | "table" | "view" | "materialized view" | "foreign table" | "sequence" | "column" | "function" | "procedure";
  readonly object: string;
  readonly grantee: string;
  /** `SELECT`, `USAGE with grant option`, …, sorted. */
  readonly privileges: readonly string[];
}

export interface SchemaSnapshot {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly schemas: readonly SchemaEntry[];
  readonly extensions: readonly ExtensionEntry[];
  readonly types: readonly TypeEntry[];
  readonly tables: readonly TableEntry[];
  readonly columns: readonly ColumnEntry[];
  readonly constraints: readonly ConstraintEntry[];
  readonly indexes: readonly IndexEntry[];
  readonly sequences: readonly SequenceEntry[];
  readonly views: readonly ViewEntry[];
  readonly functions: readonly FunctionEntry[];
  readonly triggers: readonly TriggerEntry[];
  readonly policies: readonly PolicyEntry[];
  readonly grants: readonly GrantEntry[];
}

/** The snapshot's lists of entries, one per kind of object. */
export type SnapshotSection = Exclude<keyof SchemaSnapshot, "format">;

export interface SnapshotOptions {
  /**
   * Tables left out, as `schema.table` (the tracking table and its run history), together with
   * everything that belongs to them: columns, constraints, indexes, triggers, policies, grants
   * and the sequences their columns own.
   */
  readonly exclude: readonly string[];
}
