/**
 * A comparable picture of what a test database holds, to prove a refused run changed nothing.
 * The run history is left out: every run that reaches the database is recorded there by design,
 * a refused one included (its tests check its rows themselves).
 */
import type { Sql } from "postgres";

export async function catalogPicture(sql: Sql): Promise<string> {
  const relations = await sql`
    select n.nspname, c.relname, c.relkind
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
      and not (n.nspname = 'platform' and c.relname like 'schema\\_migrations\\_runs%')
    order by 1, 2`;
  const functions = await sql`
    select n.nspname, p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname not in ('pg_catalog', 'information_schema') order by 1, 2`;
  const tracked = relations.some((r) => r.nspname === "platform" && r.relname === "schema_migrations")
    ? await sql`select version, name, checksum, status from platform.schema_migrations order by version`
    : [];
  return JSON.stringify({ relations, functions, tracked });
}

export async function trackedStatuses(sql: Sql, table = "platform.schema_migrations"): Promise<Record<string, string>> {
  const rows = await sql.unsafe<{ name: string; status: string }[]>(`select name, status from ${table} order by version`);
  return Object.fromEntries(rows.map((row) => [row.name, row.status]));
}

export async function tableExists(sql: Sql, qualifiedName: string): Promise<boolean> {
  const [row] = await sql<{ exists: boolean }[]>`select to_regclass(${qualifiedName}) is not null as exists`;
  return row!.exists;
}

export interface RecordedRun {
  readonly command: string;
  readonly outcome: string;
  readonly error_code: string | null;
  readonly error_message: string | null;
  readonly runner_version: string;
}

/** The newest run in the run history. */
export async function lastRun(sql: Sql): Promise<RecordedRun | undefined> {
  const [row] = await sql<RecordedRun[]>`
    select command, outcome, error_code, error_message, runner_version from platform.schema_migrations_runs where kind = 'run' order by id desc limit 1`;
  return row;
}

/** The backends that hold the migration lock (granted) or wait for it. */
export async function migrationLockHolders(sql: Sql, granted = true): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`select pid from pg_locks where locktype = 'advisory' and objid = 1229933895 and granted = ${granted}`;
  return rows.map((row) => row.pid);
}
