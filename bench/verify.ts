/**
 * The correctness check behind every timed tool: after its run, the database holds everything
 * the migrations create, and the tool's tracking table one row per migration. A tool that skipped
 * work cannot look fast.
 */
import type { Sql } from "postgres";
import type { SchemaCounts } from "./migrations.ts";

export interface Expectation {
  readonly schema: SchemaCounts;
  readonly migrations: number;
}

/** Objects in schema `app`, counted from the catalog. */
async function schemaCounts(sql: Sql): Promise<SchemaCounts> {
  const [row] = await sql<{ tables: number; columns: number; indexes: number; views: number; functions: number }[]>`
    select
      (select count(*) from pg_class where relnamespace = 'app'::regnamespace and relkind = 'r')::int as tables,
      (select count(*) from pg_attribute a join pg_class c on c.oid = a.attrelid
        where c.relnamespace = 'app'::regnamespace and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped)::int as columns,
      (select count(*) from pg_class where relnamespace = 'app'::regnamespace and relkind = 'i')::int as indexes,
      (select count(*) from pg_class where relnamespace = 'app'::regnamespace and relkind = 'v')::int as views,
      (select count(*) from pg_proc where pronamespace = 'app'::regnamespace)::int as functions`;
  return row!;
}

async function appliedCount(sql: Sql, appliedCountSql: string): Promise<number> {
  const [row] = await sql.unsafe<{ count: string }[]>(appliedCountSql);
  return Number(row!.count);
}

/** Returns what is wrong with the database, or nothing when it is fully migrated. */
export async function migrationProblems(sql: Sql, appliedCountSql: string, expected: Expectation): Promise<string[]> {
  const problems: string[] = [];
  const actual = await schemaCounts(sql);
  for (const key of Object.keys(expected.schema) as (keyof SchemaCounts)[]) {
    if (actual[key] !== expected.schema[key]) problems.push(`schema app has ${actual[key]} ${key}, expected ${expected.schema[key]}`);
  }
  const applied = await appliedCount(sql, appliedCountSql);
  if (applied !== expected.migrations) problems.push(`the tool records ${applied} applied migrations, expected ${expected.migrations} (${appliedCountSql})`);
  return problems;
}
