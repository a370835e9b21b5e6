/**
 * A database that already holds objects but has neither a tracking table nor a run history was
 * not built by this job, or has lost every record of it. Applying 001 on top would fail half-way,
 * or worse, succeed on a schema nobody checked. Refused, as Flyway refuses a non-empty schema
 * without its history table, with the command that adopts it.
 */
import { RefusedError } from "../shared/errors.ts";
import { fixCommand } from "../shared/invocation.ts";
import type { TableName } from "../shared/config.ts";
import type { Queryable } from "./database.ts";
import type { MigrationFile } from "../files/migration-files.ts";

/** How many of the objects found the refusal names. */
const NAMED_OBJECTS = 5;

export async function refuseUnmanagedDatabase(sql: Queryable, table: TableName, files: readonly MigrationFile[]): Promise<void> {
  const found = await userRelations(sql, table);
  if (found.length === 0) return;
  const total = found[0]!.total;
  const names = found.map((row) => row.name).join(", ");
  const highest = files.at(-1)?.version;
  throw new RefusedError([
    {
      check: "unmanaged",
      file: "(the database)",
      message:
        `the database already holds ${total} relation${total === 1 ? "" : "s"} (tables, views, sequences: ${names}${total > found.length ? ", …" : ""}), ` +
        "but no tracking table and no run history: nothing records how they were made",
      resolution:
        `if they are what the migrations up to some version build, adopt the database at that version, which checks the schema first: ${fixCommand(`baseline --to ${highest ?? "<version>"}`)}; ` +
        `if they belong to something else and every migration should run on top of them: ${fixCommand(`baseline --to 0`)}`,
    },
  ]);
}

/** Tables, views and sequences outside the system schemas, not part of an extension, and not the job's own. */
async function userRelations(sql: Queryable, table: TableName): Promise<{ name: string; total: number }[]> {
  return sql<{ name: string; total: number }[]>`
    select format('%I.%I', n.nspname, c.relname) as name, (count(*) over ())::int as total
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and not (n.nspname = ${table.schema} and left(c.relname, length(${table.table})) = ${table.table})
      and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    order by 1
    limit ${NAMED_OBJECTS}`;
}
