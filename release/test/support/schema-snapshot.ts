/**
 * Everything a migration can change in a database, as one comparable value: two databases (or one
 * before and after a round trip) with equal snapshots have the same schemas, tables, columns with
 * their types, defaults and nullability, constraints, indexes, functions, policies, row-level
 * security, triggers, views, types, sequences, grants and comments, and the same row counts.
 * Everything is named, never identified by oid, so separate databases compare equal.
 */
import type { Sql } from "postgres";

/** Schemas PostgreSQL itself owns. */
const SYSTEM_SCHEMAS = "n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname not like 'pg\\_temp\\_%' and n.nspname not like 'pg\\_toast\\_temp\\_%'";

export interface SnapshotOptions {
  /** Tables (`schema.table`) whose row counts differ by design, such as the tracking table; their structure is still compared. */
  readonly ignoreRowsOf?: readonly string[];
}

export async function schemaSnapshot(sql: Sql, { ignoreRowsOf = [] }: SnapshotOptions = {}): Promise<Record<string, unknown>> {
  const query = (text: string) => sql.unsafe(text).then((rows) => [...rows]);
  return {
    schemas: await query(`select n.nspname as schema, obj_description(n.oid, 'pg_namespace') as comment from pg_namespace n where ${SYSTEM_SCHEMAS} order by 1`),
    extensions: await query(`select e.extname, e.extversion, n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace order by 1`),
    relations: await query(`
      select n.nspname as schema, c.relname as name, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
             c.relacl::text as acl, obj_description(c.oid, 'pg_class') as comment
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where ${SYSTEM_SCHEMAS} order by 1, 2`),
    columns: await query(`
      select n.nspname as schema, c.relname as relation, a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
             a.attnotnull as not_null, pg_get_expr(d.adbin, d.adrelid) as default, a.attidentity as identity,
             a.attgenerated as generated, co.collname as collation, col_description(c.oid, a.attnum) as comment
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      join pg_namespace n on n.oid = c.relnamespace
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      left join pg_collation co on co.oid = a.attcollation and a.attcollation <> 100 -- 100: the default collation
      where ${SYSTEM_SCHEMAS} and a.attnum > 0 and not a.attisdropped
      order by 1, 2, a.attnum`),
    constraints: await query(`
      select n.nspname as schema, coalesce(c.relname, '') as relation, coalesce(t.typname, '') as domain, k.conname as name,
             k.contype as type, pg_get_constraintdef(k.oid, true) as definition, k.convalidated as validated,
             k.condeferrable as deferrable, k.condeferred as deferred
      from pg_constraint k
      join pg_namespace n on n.oid = k.connamespace
      left join pg_class c on c.oid = k.conrelid
      left join pg_type t on t.oid = k.contypid
      where ${SYSTEM_SCHEMAS} order by 1, 2, 3, 4`),
    indexes: await query(`select schemaname as schema, tablename as relation, indexname as name, indexdef as definition from pg_indexes where schemaname not in ('pg_catalog', 'information_schema') order by 1, 2, 3`),
    functions: await query(`
      select n.nspname as schema, p.proname as name, pg_get_function_identity_arguments(p.oid) as arguments, p.prokind as kind,
             case when p.prokind in ('f', 'p') then pg_get_functiondef(p.oid) end as definition, p.proacl::text as acl,
             obj_description(p.oid, 'pg_proc') as comment
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where ${SYSTEM_SCHEMAS} and not exists (select 1 from pg_depend dep where dep.objid = p.oid and dep.deptype = 'e')
      order by 1, 2, 3`),
    policies: await query(`select schemaname as schema, tablename as relation, policyname as name, permissive, roles::text[] as roles, cmd, qual, with_check from pg_policies order by 1, 2, 3`),
    triggers: await query(`
      select n.nspname as schema, c.relname as relation, t.tgname as name, t.tgenabled as enabled, pg_get_triggerdef(t.oid, true) as definition
      from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
      where ${SYSTEM_SCHEMAS} and not t.tgisinternal order by 1, 2, 3`),
    views: await query(`
      select n.nspname as schema, c.relname as name, pg_get_viewdef(c.oid, true) as definition
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where ${SYSTEM_SCHEMAS} and c.relkind in ('v', 'm') order by 1, 2`),
    types: await query(`
      select n.nspname as schema, t.typname as name, t.typtype as kind,
             (select array_agg(e.enumlabel order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid)::text[] as labels,
             case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod) end as base_type, t.typnotnull as not_null, t.typdefault as default
      from pg_type t join pg_namespace n on n.oid = t.typnamespace
      where ${SYSTEM_SCHEMAS} and t.typtype in ('e', 'd', 'r', 'm') order by 1, 2`),
    sequences: await query(`
      select schemaname as schema, sequencename as name, data_type::text, start_value, min_value, max_value, increment_by, cycle, cache_size
      from pg_sequences order by 1, 2`),
    rowCounts: await rowCounts(sql, ignoreRowsOf),
  };
}

async function rowCounts(sql: Sql, ignored: readonly string[]): Promise<Record<string, number>> {
  const tables = await sql<{ name: string }[]>`
    select format('%I.%I', n.nspname, c.relname) as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where ${sql.unsafe(SYSTEM_SCHEMAS)} and c.relkind in ('r', 'p')
    order by 1`;
  const counts: Record<string, number> = {};
  for (const { name } of tables.filter((table) => !ignored.includes(table.name))) {
    const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${name}`);
    counts[name] = row!.n;
  }
  return counts;
}
