/**
 * A CREATE INDEX CONCURRENTLY that fails leaves its index behind, marked invalid: never used by
 * queries, still maintained on every write, and in the way of the retry ("already exists"). The job
 * names such indexes when the migration fails and drops them when the operator resolves it.
 */
import type { Queryable } from "./database.ts";
import type { Statement } from "../files/sql-statements.ts";

/** Where a concurrent index build puts its index. */
export interface IndexTarget {
  readonly schema: string | null;
  readonly table: string;
  /** Null when the statement lets PostgreSQL choose the name. */
  readonly name: string | null;
}

interface IndexStmtNode {
  readonly idxname?: string;
  readonly concurrent?: boolean;
  readonly relation?: { readonly schemaname?: string; readonly relname?: string };
}

export function concurrentIndexTargets(statements: readonly Statement[]): IndexTarget[] {
  return statements.flatMap((statement) => {
    const index = statement.node.IndexStmt as IndexStmtNode | undefined;
    if (!index?.concurrent || !index.relation?.relname) return [];
    return [{ schema: index.relation.schemaname ?? null, table: index.relation.relname, name: index.idxname ?? null }];
  });
}

/** Invalid indexes the given builds may have left, as `schema.index`. */
export async function findInvalidIndexes(sql: Queryable, targets: readonly IndexTarget[]): Promise<string[]> {
  if (targets.length === 0) return [];
  const rows = await sql<{ name: string }[]>`
    select format('%I.%I', n.nspname, c.relname) as name
    from pg_index i
    join pg_class c on c.oid = i.indexrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_class t on t.oid = i.indrelid
    join json_to_recordset(${JSON.stringify(targets)}::text::json) as target(schema text, "table" text, name text)
      on t.relname = target."table"
     and (target.schema is null and pg_table_is_visible(t.oid) or n.nspname = target.schema)
     and (target.name is null or c.relname = target.name)
    where not i.indisvalid
    order by 1`;
  return rows.map((row) => row.name);
}

/** Drops them without blocking writes; this cannot run inside a transaction. */
export async function dropInvalidIndexes(sql: Queryable, names: readonly string[]): Promise<void> {
  for (const name of names) await sql.unsafe(`drop index concurrently if exists ${name}`).simple();
}

export type IndexBuildState = "valid" | "invalid" | "missing";

/** What each named build left: a valid index, an invalid one, or none. Unnamed builds are left out. */
export async function indexBuildStates(sql: Queryable, targets: readonly IndexTarget[]): Promise<Map<string, IndexBuildState>> {
  const named = targets.filter((target) => target.name !== null);
  if (named.length === 0) return new Map();
  const rows = await sql<{ name: string; state: IndexBuildState }[]>`
    select target.name, coalesce((
        select case when i.indisvalid then 'valid' else 'invalid' end
        from pg_index i
        join pg_class c on c.oid = i.indexrelid
        join pg_class t on t.oid = i.indrelid
        join pg_namespace n on n.oid = t.relnamespace
        where c.relname = target.name and t.relname = target."table"
          and (target.schema is null and pg_table_is_visible(t.oid) or n.nspname = target.schema)
        limit 1), 'missing') as state
    from json_to_recordset(${JSON.stringify(named)}::text::json) as target(schema text, "table" text, name text)`;
  return new Map(rows.map((row) => [row.name, row.state]));
}
