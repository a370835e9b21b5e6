/**
 * Generates N small, varied, deterministic migrations, written three ways: as the job's
 * `NNN_name.sql` files, as dbmate files (the same SQL under `-- migrate:up`), and as one psql script
 * that applies the job's files one transaction per migration with a tracking row each.
 *
 * Version 1 creates the schema `app`; after it the migrations cycle through the life of one table
 * (create, index, add columns, seed, view, function), each table referencing the one before, so
 * that every migration depends on earlier ones the way a real history does.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** What the generated migrations leave in schema `app`, for checking that a tool really applied them. */
export interface SchemaCounts {
  tables: number;
  columns: number;
  indexes: number;
  views: number;
  functions: number;
}

export interface GeneratedMigrations {
  readonly count: number;
  /** The job's folder: `NNN_name.sql`, plain SQL. */
  readonly jobDir: string;
  /** dbmate's folder: the same SQL under its `-- migrate:up` marker (the job would refuse that header). */
  readonly dbmateDir: string;
  /** A psql script: per migration BEGIN, \i the job's file, insert the tracking row, COMMIT. */
  readonly psqlScript: string;
  readonly expected: SchemaCounts;
}

/** The psql reference's tracking table, in schema public next to dbmate's `schema_migrations`. */
export const PSQL_TRACKING_TABLE = "public.psql_migrations";

interface Migration {
  readonly version: number;
  readonly slug: string;
  readonly sql: string;
}

const NOUNS = ["customers", "projects", "invoices", "documents", "webhooks", "teams", "comments", "releases", "api_keys", "reports"];

/** One step in the life of a table; `cycle` numbers the table, from 1. */
interface Step {
  readonly slug: (table: string) => string;
  readonly sql: (table: string, parent: string | undefined, cycle: number) => string;
  readonly adds: (parent: string | undefined) => Partial<SchemaCounts>;
}

const STEPS: readonly Step[] = [
  {
    slug: (table) => `create_${table}`,
    sql: (table, parent) => `-- The ${table} entity${parent ? `, owned by a row of ${parent}` : ""}.
create table app.${table} (
  id bigint generated always as identity primary key,${parent ? `\n  parent_id bigint references app.${parent} (id) on delete cascade,` : ""}
  code text not null unique,
  title text not null check (length(title) between 1 and 200),
  status text not null default 'draft' check (status in ('draft', 'active', 'archived')),
  created_at timestamptz not null default now()
);
comment on table app.${table} is 'Benchmark entity ${table}';
`,
    // Primary key and unique(code) each bring an index.
    adds: (parent) => ({ tables: 1, columns: parent ? 6 : 5, indexes: 2 }),
  },
  {
    slug: (table) => `index_${table}`,
    // A real migration waives the lint gate's rule with its reason, as these do: the job runs the gate.
    sql: (table, parent) => `-- Listing by status, newest first${parent ? "; and the foreign key, for cascading deletes" : ""}.
-- lint:allow require-concurrent-index-creation the table was created by the previous migration and is still empty
create index ${table}_status_created_idx on app.${table} (status, created_at desc);${
      parent
        ? `\n-- lint:allow require-concurrent-index-creation the table was created by the previous migration and is still empty\ncreate index ${table}_parent_idx on app.${table} (parent_id);`
        : ""
    }
`,
    adds: (parent) => ({ indexes: parent ? 2 : 1 }),
  },
  {
    slug: (table) => `add_priority_to_${table}`,
    sql: (table) => `alter table app.${table} add column notes text;
alter table app.${table} add column priority integer not null default 0 check (priority >= 0);
`,
    adds: () => ({ columns: 2 }),
  },
  {
    slug: (table) => `seed_${table}`,
    sql: (table, _parent, cycle) => `insert into app.${table} (code, title, status, priority) values
${[1, 2, 3, 4, 5].map((row) => `  ('${table}-${row}', 'Seed ${row} of set ${cycle}', '${row % 2 === 0 ? "draft" : "active"}', ${row * cycle})`).join(",\n")};
`,
    adds: () => ({}),
  },
  {
    slug: (table) => `create_active_${table}_view`,
    sql: (table) => `create view app.active_${table} as
  select id, code, title, priority from app.${table} where status = 'active';
`,
    adds: () => ({ views: 1 }),
  },
  {
    slug: (table) => `create_archive_${table}_function`,
    sql: (table) => `create function app.archive_${table}(p_code text) returns integer
language plpgsql as $$
declare
  archived integer;
begin
  update app.${table} set status = 'archived' where code = p_code and status <> 'archived';
  get diagnostics archived = row_count;
  return archived;
end
$$;
`,
    adds: () => ({ functions: 1 }),
  },
];

const CREATE_SCHEMA: Migration = { version: 1, slug: "create_app_schema", sql: "create schema app;\ncomment on schema app is 'Benchmark application schema';\n" };

function tableName(cycle: number): string {
  return `${NOUNS[(cycle - 1) % NOUNS.length]}_${cycle}`;
}

/** The migrations and what they leave behind in schema `app`. */
function planMigrations(count: number): { migrations: Migration[]; expected: SchemaCounts } {
  const expected: SchemaCounts = { tables: 0, columns: 0, indexes: 0, views: 0, functions: 0 };
  const migrations = [CREATE_SCHEMA];
  for (let version = 2; version <= count; version++) {
    const position = version - 2;
    const cycle = Math.floor(position / STEPS.length) + 1;
    const step = STEPS[position % STEPS.length]!;
    const table = tableName(cycle);
    const parent = cycle > 1 ? tableName(cycle - 1) : undefined;
    migrations.push({ version, slug: step.slug(table), sql: step.sql(table, parent, cycle) });
    for (const [key, added] of Object.entries(step.adds(parent)) as [keyof SchemaCounts, number][]) expected[key] += added;
  }
  return { migrations, expected };
}

/** Versions padded to at least three digits, as the job requires, and to one width so names sort. */
function fileNameOf(migration: Migration, width: number): string {
  return `${String(migration.version).padStart(width, "0")}_${migration.slug}.sql`;
}

function psqlScriptFor(migrations: readonly Migration[], jobDir: string, width: number): string {
  const header = `create table if not exists ${PSQL_TRACKING_TABLE} (version bigint primary key, name text not null, applied_at timestamptz not null default now());\n`;
  const steps = migrations.map((migration) => {
    const fileName = fileNameOf(migration, width);
    return `begin;\n\\i '${join(jobDir, fileName)}'\ninsert into ${PSQL_TRACKING_TABLE} (version, name) values (${migration.version}, '${fileName.slice(0, -4)}');\ncommit;\n`;
  });
  return header + steps.join("");
}

/** Writes `count` migrations under `root` (which must exist) in all three forms. */
export async function generateMigrations(root: string, count: number): Promise<GeneratedMigrations> {
  const { migrations, expected } = planMigrations(count);
  const width = Math.max(3, String(count).length);
  const jobDir = join(root, "job");
  const dbmateDir = join(root, "dbmate");
  await Promise.all([mkdir(jobDir), mkdir(dbmateDir)]);
  await Promise.all(
    migrations.flatMap((migration) => {
      const fileName = fileNameOf(migration, width);
      return [writeFile(join(jobDir, fileName), migration.sql), writeFile(join(dbmateDir, fileName), `-- migrate:up\n${migration.sql}\n-- migrate:down\n`)];
    }),
  );
  const psqlScript = join(root, "apply.psql");
  await writeFile(psqlScript, psqlScriptFor(migrations, jobDir, width));
  return { count, jobDir, dbmateDir, psqlScript, expected };
}
