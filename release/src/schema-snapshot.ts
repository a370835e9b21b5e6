/**
 * The schema as data: everything a migration can change in the managed schemas, read from the
 * PostgreSQL catalog into a normalised, deterministic, JSON-serializable snapshot. Two databases
 * with the same schema give equal snapshots (and equal hashes); two snapshots compare into a
 * readable list of differences.
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
import { createHash } from "node:crypto";
import type { Sql } from "postgres";
import { z } from "zod";
import type { Queryable } from "./database.ts";

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

type Section = Exclude<keyof SchemaSnapshot, "format">;

export interface SnapshotOptions {
  /**
   * Tables left out, as `schema.table` (the tracking table and its run history), together with
   * everything that belongs to them: columns, constraints, indexes, triggers, policies, grants
   * and the sequences their columns own.
   */
  readonly exclude: readonly string[];
}

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

/**
 * A fingerprint of the same catalog query, computed by the server: 32 characters instead of the
 * whole snapshot. Equal fingerprints mean an unchanged schema; different ones only mean "compare
 * the snapshots" (the server's text also holds what the snapshot later leaves out or reorders).
 */
export async function snapshotFingerprint(sql: Queryable, options: SnapshotOptions): Promise<string> {
  const read = async (tx: Queryable) => {
    await tx`select set_config('search_path', '', true)`;
    const [row] = await tx.unsafe<{ fingerprint: string }[]>(`select md5(s.snapshot::text) as fingerprint from (${SNAPSHOT_QUERY}) as s`, [JSON.stringify(options.exclude)]);
    return row!.fingerprint;
  };
  return isSession(sql) ? sql.begin("isolation level repeatable read read only", read) : read(sql);
}

function isSession(sql: Queryable): sql is Sql {
  return "begin" in sql;
}

type CatalogRows = { readonly [S in Section]: SchemaSnapshot[S] } & { readonly excluded: readonly { readonly name: string }[] };

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

/** The snapshot with `transform` applied to the entries of every section. */
function eachSection(snapshot: SchemaSnapshot, transform: <T extends SnapshotEntry>(entries: readonly T[]) => T[]): SchemaSnapshot {
  return {
    format: snapshot.format,
    schemas: transform(snapshot.schemas),
    extensions: transform(snapshot.extensions),
    types: transform(snapshot.types),
    tables: transform(snapshot.tables),
    columns: transform(snapshot.columns),
    constraints: transform(snapshot.constraints),
    indexes: transform(snapshot.indexes),
    sequences: transform(snapshot.sequences),
    views: transform(snapshot.views),
    functions: transform(snapshot.functions),
    triggers: transform(snapshot.triggers),
    policies: transform(snapshot.policies),
    grants: transform(snapshot.grants),
  };
}

/** By code point, as the "C" collation sorts: the same order whatever the locale. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// The catalog query: shared sets of the managed objects first, then one JSON array per section
// whose rows are shaped exactly like the section's entry type. It returns the JSON as text, parsed
// here, so the result does not depend on how the client is set up to parse json.

/** A text[] as a JSON array sorted in the "C" collation (independent of the database's locale). */
function sortedJsonArray(array: string): string {
  return `coalesce((select json_agg(item order by item collate "C") from unnest(${array}) as item), '[]')`;
}

function roleName(oid: string): string {
  return `case when ${oid} = 0 then 'PUBLIC' else pg_get_userbyid(${oid}) end`;
}

// Each catalog is scanned once: pg_attribute, pg_constraint, pg_index, … are then reached through
// their indexes from the few managed relations, rather than scanned whole for every section.
const MANAGED_OBJECTS = `
  -- An extension's own objects belong to the extension (its version says what they are).
  extension_members as materialized (
    select classid, objid from pg_depend where deptype = 'e'
  ),
  -- Every schema but PostgreSQL's own and the per-session temporary ones.
  namespaces as materialized (
    select n.oid, n.nspname, n.nspowner, n.nspacl
    from pg_namespace n
    where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
      and n.nspname not like 'pg\\_temp\\_%' and n.nspname not like 'pg\\_toast\\_temp\\_%'
      and n.oid not in (select objid from extension_members where classid = 'pg_namespace'::regclass)
  ),
  relations as materialized (
    select c.oid, format('%I.%I', n.nspname, c.relname) as name, c.relkind, c.relowner, c.relacl, c.reloptions,
      c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relispartition, c.relpartbound
    from pg_class c join namespaces n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'f', 'v', 'm', 'S')
      and c.oid not in (select objid from extension_members where classid = 'pg_class'::regclass)
  ),
  types as materialized (
    select t.oid, format('%I.%I', n.nspname, t.typname) as name, t.typtype, t.typowner, t.typbasetype, t.typtypmod,
      t.typnotnull, t.typdefaultbin, t.typrelid
    from pg_type t join namespaces n on n.oid = t.typnamespace
    where (t.typtype in ('e', 'd', 'r') or (t.typtype = 'c' and (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c'))
      and t.oid not in (select objid from extension_members where classid = 'pg_type'::regclass)
  ),
  routines as materialized (
    select p.oid, format('%I.%I(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)) as name, p.prokind, p.proowner, p.proacl,
      p.prolang, p.provolatile, p.proparallel, p.proisstrict, p.prosecdef, p.proconfig, p.prosrc
    from pg_proc p join namespaces n on n.oid = p.pronamespace
    where p.oid not in (select objid from extension_members where classid = 'pg_proc'::regclass)
  ),
  table_columns as materialized (
    select a.attrelid, a.attnum, format('%s.%I', r.name, a.attname) as name, r.name as table_name, r.relkind, a.attacl,
      a.atttypid, a.atttypmod, a.attnotnull, a.attidentity, a.attgenerated, a.attcollation
    from relations r join pg_attribute a on a.attrelid = r.oid
    -- Said as an array so the planner looks the few relations up by index instead of scanning pg_attribute.
    where a.attrelid = any(array(select oid from relations)) and a.attnum > 0 and not a.attisdropped
  )`;

const CONSTRAINT_TYPE = `case k.contype when 'p' then 'primary key' when 'u' then 'unique' when 'f' then 'foreign key'
  when 'c' then 'check' when 'x' then 'exclusion' else 'trigger' end`;

const SECTION_QUERIES: Readonly<Record<Section | "excluded", string>> = {
  // The excluded tables' names, quoted as every other name here is.
  excluded: `
    select format('%I.%I', split_part(name, '.', 1), split_part(name, '.', 2)) as name
    from json_array_elements_text($1::text::json) as name`,

  schemas: `
    select quote_ident(n.nspname) as name, pg_get_userbyid(n.nspowner) as owner
    from namespaces n`,

  extensions: `
    select e.extname as name, e.extversion as version, quote_ident(n.nspname) as schema
    from pg_extension e join pg_namespace n on n.oid = e.extnamespace`,

  types: `
    select t.name,
      case t.typtype when 'e' then 'enum' when 'd' then 'domain' when 'c' then 'composite' else 'range' end as kind,
      pg_get_userbyid(t.typowner) as owner,
      case t.typtype
        when 'e' then (select string_agg(quote_literal(l.enumlabel), ', ' order by l.enumsortorder) from pg_enum l where l.enumtypid = t.oid)
        when 'd' then concat_ws(' ', format_type(t.typbasetype, t.typtypmod), case when t.typnotnull then 'not null' end, 'default ' || pg_get_expr(t.typdefaultbin, 0))
        when 'c' then (select string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' order by a.attnum)
                       from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped)
        else (select format_type(g.rngsubtype, null) from pg_range g where g.rngtypid = t.oid)
      end as definition
    from types t`,

  tables: `
    select r.name,
      case r.relkind when 'r' then 'table' when 'p' then 'partitioned table' else 'foreign table' end as kind,
      pg_get_userbyid(r.relowner) as owner,
      r.relpersistence = 'u' as unlogged,
      r.relrowsecurity as row_security,
      r.relforcerowsecurity as force_row_security,
      coalesce((select json_agg(i.inhparent::regclass::text order by i.inhseqno) from pg_inherits i where i.inhrelid = r.oid), '[]') as parents,
      case when r.relispartition then pg_get_expr(r.relpartbound, r.oid) end as partition_bound,
      case when r.relkind = 'p' then pg_get_partkeydef(r.oid) end as partition_key,
      ${sortedJsonArray("r.reloptions")} as options
    from relations r
    where r.relkind in ('r', 'p', 'f')`,

  // The collation only when it is not the database default (100), so an ordinary text column says none.
  columns: `
    select c.name,
      c.table_name as table,
      (row_number() over (partition by c.attrelid order by c.attnum))::int as position,
      format_type(c.atttypid, c.atttypmod) as type,
      not c.attnotnull as nullable,
      case when c.attgenerated = '' then pg_get_expr(d.adbin, d.adrelid) end as default,
      case c.attidentity when 'a' then 'always' when 'd' then 'by default' end as identity,
      case c.attgenerated when 's' then pg_get_expr(d.adbin, d.adrelid) || ' stored' when 'v' then pg_get_expr(d.adbin, d.adrelid) || ' virtual' end as generated,
      case when c.attcollation not in (0, 100) then c.attcollation::regcollation::text end as collation
    from table_columns c
    left join pg_attrdef d on d.adrelid = c.attrelid and d.adnum = c.attnum
    where c.relkind in ('r', 'p', 'f')`,

  // contype 'n' (NOT NULL, catalogued as a constraint since PostgreSQL 18) is left out: columns say
  // it as nullability, and listing it would make a major upgrade look like a schema change.
  constraints: `
    select format('%s.%I', r.name, k.conname) as name, r.name as table, null as domain,
      ${CONSTRAINT_TYPE} as type, pg_get_constraintdef(k.oid) as definition, k.convalidated as validated
    from relations r join pg_constraint k on k.conrelid = r.oid
    where k.contype <> 'n'
    union all
    select format('%s.%I', t.name, k.conname), null, t.name, ${CONSTRAINT_TYPE}, pg_get_constraintdef(k.oid), k.convalidated
    from types t join pg_constraint k on k.contypid = t.oid
    where k.contype <> 'n'`,

  indexes: `
    select i.oid::regclass::text as name, r.name as table, pg_get_indexdef(x.indexrelid) as definition,
      x.indisunique as unique, x.indisvalid as valid
    from relations r join pg_index x on x.indrelid = r.oid join pg_class i on i.oid = x.indexrelid`,

  sequences: `
    select r.name,
      pg_get_userbyid(r.relowner) as owner,
      format_type(s.seqtypid, null) as type,
      s.seqstart::text as start, s.seqincrement::text as increment, s.seqmin::text as min, s.seqmax::text as max,
      s.seqcache::text as cache, s.seqcycle as cycle,
      (select format('%s.%I', d.refobjid::regclass::text, a.attname)
       from pg_depend d join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
       where d.classid = 'pg_class'::regclass and d.objid = r.oid and d.refclassid = 'pg_class'::regclass
         and d.deptype in ('a', 'i') and d.refobjsubid > 0) as owned_by
    from relations r join pg_sequence s on s.seqrelid = r.oid`,

  views: `
    select r.name,
      case r.relkind when 'v' then 'view' else 'materialized view' end as kind,
      pg_get_userbyid(r.relowner) as owner,
      pg_get_viewdef(r.oid) as definition,
      ${sortedJsonArray("r.reloptions")} as options
    from relations r
    where r.relkind in ('v', 'm')`,

  // A SQL-standard body (BEGIN ATOMIC, RETURN) is stored parsed, not as text: it is hashed deparsed.
  functions: `
    select f.name,
      case f.prokind when 'f' then 'function' when 'p' then 'procedure' when 'a' then 'aggregate' else 'window function' end as kind,
      pg_get_userbyid(f.proowner) as owner,
      pg_get_function_arguments(f.oid) as arguments,
      pg_get_function_result(f.oid) as result,
      l.lanname as language,
      case f.provolatile when 'i' then 'immutable' when 's' then 'stable' else 'volatile' end as volatility,
      case f.proparallel when 's' then 'safe' when 'r' then 'restricted' else 'unsafe' end as parallel,
      f.proisstrict as strict,
      f.prosecdef as security_definer,
      ${sortedJsonArray("f.proconfig")} as config,
      encode(sha256(convert_to(coalesce(pg_get_function_sqlbody(f.oid), f.prosrc), 'UTF8')), 'hex') as body_sha256
    from routines f join pg_language l on l.oid = f.prolang`,

  triggers: `
    select format('%s.%I', r.name, t.tgname) as name, r.name as table, pg_get_triggerdef(t.oid) as definition,
      case t.tgenabled when 'O' then 'enabled' when 'D' then 'disabled' when 'R' then 'replica' else 'always' end as enabled
    from relations r join pg_trigger t on t.tgrelid = r.oid
    where not t.tgisinternal`,

  policies: `
    select format('%s.%I', r.name, p.polname) as name, r.name as table,
      case when p.polpermissive then 'permissive' else 'restrictive' end as mode,
      case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update' when 'd' then 'delete' else 'all' end as command,
      (select json_agg(role order by role collate "C") from (select ${roleName("o")} as role from unnest(p.polroles) as o) as roles) as roles,
      pg_get_expr(p.polqual, p.polrelid) as using,
      pg_get_expr(p.polwithcheck, p.polrelid) as with_check
    from relations r join pg_policy p on p.polrelid = r.oid`,

  // acldefault() writes out the privileges a NULL ACL means, so "never granted" and "granted, then
  // revoked back to the default" compare equal.
  grants: `
    select format('%s %s to %s', a.object_kind, a.object, g.grantee) as name, a.object_kind, a.object, g.grantee,
      json_agg(g.privilege order by g.privilege collate "C") as privileges
    from (
      select 'schema' as object_kind, quote_ident(n.nspname) as object, coalesce(n.nspacl, acldefault('n', n.nspowner)) as acl
      from namespaces n
      union all
      select case r.relkind when 'S' then 'sequence' when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table' else 'table' end,
        r.name, coalesce(r.relacl, acldefault(case when r.relkind = 'S' then 's' else 'r' end::"char", r.relowner))
      from relations r
      union all
      select 'column', c.name, c.attacl from table_columns c where c.attacl is not null
      union all
      select case when f.prokind = 'p' then 'procedure' else 'function' end, f.name, coalesce(f.proacl, acldefault('f', f.proowner))
      from routines f
    ) as a
    cross join lateral (
      select ${roleName("x.grantee")} as grantee,
        x.privilege_type || case when x.is_grantable then ' with grant option' else '' end as privilege
      from aclexplode(a.acl) as x
    ) as g
    group by a.object_kind, a.object, g.grantee`,
};

const SNAPSHOT_QUERY = `
  with ${MANAGED_OBJECTS}
  select json_build_object(${Object.entries(SECTION_QUERIES)
    .map(([section, query]) => `'${section}', (select coalesce(json_agg(row), '[]') from (${query}) as row)`)
    .join(",\n")})::text as snapshot`;

// ---------------------------------------------------------------------------------------------
// Kinds, parents and exclusion.

export type ObjectKind = "schema" | "extension" | "type" | "table" | "column" | "constraint" | "index" | "sequence" | "view" | "function" | "trigger" | "policy" | "grant";

interface KindInfo {
  readonly kind: ObjectKind;
  readonly section: Section;
  /** How a difference names the object: `index platform.users_email_idx`, `grant on table platform.plans to anon`. */
  readonly label: string;
  readonly plural: string;
}

/** Every kind, in the order differences are listed: containers before what they contain. */
const KINDS: readonly KindInfo[] = [
  { kind: "schema", section: "schemas", label: "schema", plural: "schemas" },
  { kind: "extension", section: "extensions", label: "extension", plural: "extensions" },
  { kind: "type", section: "types", label: "type", plural: "types" },
  { kind: "table", section: "tables", label: "table", plural: "tables" },
  { kind: "column", section: "columns", label: "column", plural: "columns" },
  { kind: "constraint", section: "constraints", label: "constraint", plural: "constraints" },
  { kind: "index", section: "indexes", label: "index", plural: "indexes" },
  { kind: "sequence", section: "sequences", label: "sequence", plural: "sequences" },
  { kind: "view", section: "views", label: "view", plural: "views" },
  { kind: "function", section: "functions", label: "function", plural: "functions" },
  { kind: "trigger", section: "triggers", label: "trigger", plural: "triggers" },
  { kind: "policy", section: "policies", label: "policy", plural: "policies" },
  { kind: "grant", section: "grants", label: "grant on", plural: "grants" },
];
const KIND_INFO = new Map(KINDS.map((info) => [info.kind, info]));

/**
 * The object an entry belongs to and goes away with: a column's table, a grant's object, an
 * identity sequence's column. Names are unique across the kinds that can be parents (relations,
 * columns, functions, types, schemas), so a name alone identifies the parent.
 */
function parentOf(kind: ObjectKind, entry: SnapshotEntry): string | undefined {
  switch (kind) {
    case "column":
    case "index":
    case "trigger":
    case "policy":
      return entry.table as string;
    case "constraint":
      return ((entry.table ?? entry.domain) as string | null) ?? undefined;
    case "sequence":
      return (entry.owned_by as string | null) ?? undefined;
    case "grant":
      return entry.object as string;
    default:
      return undefined;
  }
}

function entriesOf(snapshot: SchemaSnapshot, info: KindInfo): readonly SnapshotEntry[] {
  return snapshot[info.section];
}

/** Every object's parent, over the whole snapshot. */
function parentsIn(snapshot: SchemaSnapshot): Map<string, string> {
  const parents = new Map<string, string>();
  for (const info of KINDS) {
    for (const entry of entriesOf(snapshot, info)) {
      const parent = parentOf(info.kind, entry);
      if (parent !== undefined) parents.set(entry.name, parent);
    }
  }
  return parents;
}

/** True when `name` or one of its ancestors is in `names`. */
function withinAny(name: string, names: ReadonlySet<string>, parents: ReadonlyMap<string, string>): boolean {
  for (let current: string | undefined = name; current !== undefined; current = parents.get(current)) {
    if (names.has(current)) return true;
  }
  return false;
}

function withoutExcluded(snapshot: SchemaSnapshot, excluded: ReadonlySet<string>): SchemaSnapshot {
  if (excluded.size === 0) return snapshot;
  const parents = parentsIn(snapshot);
  return eachSection(snapshot, (entries) => entries.filter((entry) => !withinAny(entry.name, excluded, parents)));
}

// ---------------------------------------------------------------------------------------------
// Differences.

export type Change = "added" | "removed" | "changed";

/** One way `after` differs from `before`. */
export interface SnapshotDifference {
  readonly kind: ObjectKind;
  /** The object's name as in the snapshot: `platform.users.active_org_id`, `platform.f(uuid, text)`. */
  readonly object: string;
  readonly change: Change;
  /**
   * For added and removed: a summary (`uuid, nullable`), with the objects that came or went with
   * it (`3 columns, 1 index`), which are not listed on their own. For changed: each attribute
   * that changed, `default: now() → none`, separated by `; `.
   */
  readonly detail?: string;
}

/**
 * What changed from `before` to `after`, in kind order (schemas first, grants last), then by
 * name. Works on snapshots read back from JSON.
 */
export function diffSnapshots(before: SchemaSnapshot, after: SchemaSnapshot): SnapshotDifference[] {
  const found = KINDS.flatMap((info) => compareKind(info, entriesOf(before, info), entriesOf(after, info)));
  const added = new Set(found.filter((f) => f.change === "added").map((f) => f.entry.name));
  const removed = new Set(found.filter((f) => f.change === "removed").map((f) => f.entry.name));
  const parents = new Map([...parentsIn(before), ...parentsIn(after)]);
  const coming = (f: Found) => (f.change === "added" ? added : f.change === "removed" ? removed : undefined);

  // An object that came or went with its parent is counted under the parent, not listed itself.
  const carried = new Map<string, Found[]>();
  const listed: Found[] = [];
  for (const f of found) {
    const together = coming(f);
    const carrier = together ? outermostWithin(f.entry.name, together, parents) : undefined;
    if (carrier === undefined) listed.push(f);
    else carried.set(carrier, [...(carried.get(carrier) ?? []), f]);
  }
  return listed.map((f) => toDifference(f, carried.get(f.entry.name) ?? []));
}

/** "column platform.users.active_org_id added (uuid, nullable)" */
export function describeDifference(difference: SnapshotDifference): string {
  const label = KIND_INFO.get(difference.kind)?.label ?? difference.kind;
  const subject = `${label} ${difference.object} ${difference.change}`;
  if (difference.detail === undefined) return subject;
  return difference.change === "changed" ? `${subject}: ${difference.detail}` : `${subject} (${difference.detail})`;
}

interface Found {
  readonly info: KindInfo;
  readonly change: Change;
  /** The object as it is after the change (before it, when removed). */
  readonly entry: SnapshotEntry;
  readonly previous?: SnapshotEntry;
}

function compareKind(info: KindInfo, before: readonly SnapshotEntry[], after: readonly SnapshotEntry[]): Found[] {
  const beforeByName = new Map(before.map((entry) => [entry.name, entry]));
  const afterByName = new Map(after.map((entry) => [entry.name, entry]));
  const found: Found[] = [];
  for (const name of [...new Set([...beforeByName.keys(), ...afterByName.keys()])].sort(compareNames)) {
    const old = beforeByName.get(name);
    const current = afterByName.get(name);
    if (!old) found.push({ info, change: "added", entry: current! });
    else if (!current) found.push({ info, change: "removed", entry: old });
    else if (canonicalJson(old) !== canonicalJson(current)) found.push({ info, change: "changed", entry: current, previous: old });
  }
  return found;
}

/** The outermost proper ancestor of `name` that is in `names` (an added table for its added column). */
function outermostWithin(name: string, names: ReadonlySet<string>, parents: ReadonlyMap<string, string>): string | undefined {
  let outermost: string | undefined;
  for (let current = parents.get(name); current !== undefined; current = parents.get(current)) {
    if (names.has(current)) outermost = current;
  }
  return outermost;
}

function toDifference(found: Found, carried: readonly Found[]): SnapshotDifference {
  const { info, change, entry, previous } = found;
  const detail = previous ? changedAttributes(previous, entry) : [summarize(info.kind, entry), countCarried(carried)].filter((part) => part !== "").join(", ");
  return { kind: info.kind, object: entry.name, change, ...(detail === "" ? {} : { detail }) };
}

function changedAttributes(before: SnapshotEntry, after: SnapshotEntry): string {
  const attributes = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) => key !== "name").sort(compareNames);
  return attributes
    .filter((key) => canonicalJson(before[key] ?? null) !== canonicalJson(after[key] ?? null))
    .map((key) => `${key.replaceAll("_", " ")}: ${renderValue(key, before[key])} → ${renderValue(key, after[key])}`)
    .join("; ");
}

function renderValue(key: string, value: SnapshotValue | undefined): string {
  if (value === null || value === undefined) return "none";
  if (Array.isArray(value)) return `[${value.join(", ")}]`;
  // A whole sha256 is noise in a sentence; its first 12 digits tell two bodies apart.
  if (key.endsWith("sha256") && typeof value === "string") return value.slice(0, 12);
  return String(value);
}

function countCarried(carried: readonly Found[]): string {
  return KINDS.map((info) => carried.filter((f) => f.info === info).length)
    .map((count, index) => (count > 0 ? `${count} ${count === 1 ? KINDS[index]!.kind : KINDS[index]!.plural}` : ""))
    .filter((part) => part !== "")
    .join(", ");
}

/** The few words that say what an added or removed object is. */
function summarize(kind: ObjectKind, entry: SnapshotEntry): string {
  switch (kind) {
    case "extension":
      return `version ${entry.version as string} in schema ${entry.schema as string}`;
    case "type":
      return `${entry.kind as string} ${entry.definition as string}`;
    case "table":
    case "view":
      return entry.kind === kind ? "" : (entry.kind as string);
    case "column":
      return describeColumn(entry as ColumnEntry);
    case "constraint":
    case "index":
      return describeDefinition(entry as ConstraintEntry | IndexEntry);
    case "sequence":
      return [entry.type as string, entry.owned_by ? `owned by ${entry.owned_by as string}` : ""].filter((part) => part !== "").join(", ");
    case "function":
      return describeFunction(entry as FunctionEntry);
    case "trigger":
      return entry.definition as string;
    case "policy":
      return describePolicy(entry as PolicyEntry);
    case "grant":
      return (entry.privileges as readonly string[]).join(", ");
    case "schema":
      return "";
  }
}

function describeColumn(column: ColumnEntry): string {
  return [
    column.type,
    column.nullable ? "nullable" : "not null",
    column.default !== null ? `default ${column.default}` : "",
    column.identity !== null ? `generated ${column.identity} as identity` : "",
    column.generated !== null ? `generated always as ${column.generated}` : "",
    column.collation !== null ? `collate ${column.collation}` : "",
  ]
    .filter((part) => part !== "")
    .join(", ");
}

function describeDefinition(entry: ConstraintEntry | IndexEntry): string {
  const invalid = entry.validated === false ? ", not validated" : entry.valid === false ? ", invalid" : "";
  return `${entry.definition}${invalid}`;
}

function describeFunction(fn: FunctionEntry): string {
  return [`${fn.kind} returning ${fn.result ?? "nothing"}`, `language ${fn.language}`, fn.volatility, fn.security_definer ? "security definer" : ""]
    .filter((part) => part !== "")
    .join(", ");
}

function describePolicy(policy: PolicyEntry): string {
  const using = policy.using !== null ? ` using ${policy.using}` : "";
  const check = policy.with_check !== null ? ` with check ${policy.with_check}` : "";
  return `${policy.mode} for ${policy.command} to ${policy.roles.join(", ")}${using}${check}`;
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON and the stored form.

/** JSON with object keys sorted at every level: jsonb reorders keys, and the hash must not notice. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, nested: unknown) =>
    nested !== null && typeof nested === "object" && !Array.isArray(nested)
      ? Object.fromEntries(Object.entries(nested).sort(([a], [b]) => compareNames(a, b)))
      : nested,
  );
}

const StoredValueSchema = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);
const StoredEntrySchema = z.record(z.string(), StoredValueSchema).refine((entry) => typeof entry.name === "string", "every entry has a name");
/** The shape every snapshot has; the attributes of each kind were written by this module in this format. */
const StoredSnapshotSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  ...Object.fromEntries(KINDS.map((info) => [info.section, z.array(StoredEntrySchema)])),
});
