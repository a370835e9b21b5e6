/**
 * The catalog query behind a snapshot: shared sets of the managed objects first, then one JSON
 * array per section whose rows are shaped exactly like the section's entry type (types.ts). It
 * returns the JSON as text, parsed by the caller, so the result does not depend on how the client
 * is set up to parse json.
 */
import type { SnapshotSection } from "./types.ts";

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

const SECTION_QUERIES: Readonly<Record<SnapshotSection | "excluded", string>> = {
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

/**
 * The whole snapshot in one statement, as one text column `snapshot`: every section, plus
 * `excluded` (the excluded tables' names, quoted like every other name). Its one parameter, `$1`,
 * is the excluded tables as a JSON array of `schema.table`. Run it under an empty search_path, so
 * the deparsers qualify every name.
 */
export const SNAPSHOT_QUERY = `
  with ${MANAGED_OBJECTS}
  select json_build_object(${Object.entries(SECTION_QUERIES)
    .map(([section, query]) => `'${section}', (select coalesce(json_agg(row), '[]') from (${query}) as row)`)
    .join(",\n")})::text as snapshot`;
