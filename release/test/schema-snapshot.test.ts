/**
 * The schema snapshot against a real PostgreSQL: the same schema gives the same snapshot however
 * it was built, nothing but the schema is in it, and two snapshots compare into exact lines.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { PLATFORM_MIGRATIONS, migrationsFolder } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { describeDifference, diffSnapshots } from "../src/database/schema-snapshot/diff.ts";
import { parseStoredSnapshot, snapshotHash, takeSnapshot } from "../src/database/schema-snapshot/snapshot.ts";
import type { SchemaSnapshot } from "../src/database/schema-snapshot/types.ts";

const server = useTestServer();

const TRACKING_TABLES = ["platform.schema_migrations", "platform.schema_migrations_runs"];
const HOLD_LINE = "-- migrate:hold requires session context middleware\n";

/** The platform migrations' files, 007 without its hold line so that all eight apply (its policies included). */
async function platformFilesWithHoldReleased(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of await readdir(PLATFORM_MIGRATIONS)) files[name] = await readFile(join(PLATFORM_MIGRATIONS, name), "utf8");
  const held = files["007_restrictive_rls_policies.sql"]!;
  expect(held.startsWith(HOLD_LINE)).toBe(true);
  files["007_restrictive_rls_policies.sql"] = held.slice(HOLD_LINE.length);
  return files;
}

function snapshotOf(db: TestDatabase): Promise<SchemaSnapshot> {
  return takeSnapshot(db.sql, { exclude: TRACKING_TABLES });
}

function applied(result: Awaited<ReturnType<typeof runMain>>): unknown[] {
  return result.events.filter((e) => e.event === "migration_applied").map((e) => e.migration);
}

const PLATFORM_FUNCTIONS = [
  "platform.audit_logs_reject_update()",
  "platform.current_app_user_id()",
  "platform.get_user_active_org(uuid)",
  "platform.is_org_member(uuid)",
  "platform.set_user_active_org(uuid, uuid)",
  "platform.user_has_permission(uuid, uuid, text)",
];

describe("the same schema gives the same snapshot", () => {
  test("001-008 applied in one run of up, and applied one migration per run, snapshot identically (tracking tables excluded)", async () => {
    const files = await platformFilesWithHoldReleased();
    const migrations = Object.keys(files)
      .filter((name) => /^\d{3}_(?!rollback)\w+\.sql$/.test(name))
      .sort();
    expect(migrations).toHaveLength(8);

    const inOneRun = await server.fresh();
    const oneRun = await runMain([], { url: inOneRun.url, migrationsDir: await migrationsFolder(files) });
    expect(oneRun.code).toBe(0);
    expect(applied(oneRun)).toHaveLength(8);

    const onePerRun = await server.fresh();
    const staged = await migrationsFolder({ "lint.toml": files["lint.toml"]! });
    for (const name of migrations) {
      await writeFile(join(staged, name), files[name]!);
      const run = await runMain([], { url: onePerRun.url, migrationsDir: staged });
      expect(run.code).toBe(0);
      expect(applied(run)).toEqual([name.slice(0, -".sql".length)]);
    }

    const once = await snapshotOf(inOneRun);
    const stepwise = await snapshotOf(onePerRun);
    expect(stepwise).toEqual(once);
    expect(snapshotHash(stepwise)).toBe(snapshotHash(once));

    // It describes the whole schema, and none of the job's own bookkeeping.
    expect(once.functions.map((fn) => fn.name)).toEqual(PLATFORM_FUNCTIONS);
    expect(once.policies).toHaveLength(33);
    expect(once.tables.filter((table) => table.row_security)).toHaveLength(14);
    expect(once.columns.find((column) => column.name === "platform.users.active_org_id")).toEqual({
      name: "platform.users.active_org_id",
      table: "platform.users",
      position: 6,
      type: "uuid",
      nullable: true,
      default: null,
      identity: null,
      generated: null,
      collation: null,
    });
    expect(JSON.stringify(once)).not.toContain("schema_migrations");
    const unexcluded = await takeSnapshot(inOneRun.sql, { exclude: [] });
    expect(unexcluded.tables.map((table) => table.name)).toEqual(expect.arrayContaining(TRACKING_TABLES));
    expect(unexcluded.sequences.map((sequence) => sequence.owned_by)).toContain("platform.schema_migrations_runs.id");
  });

  test("the session's search_path does not change the snapshot, and a surrounding transaction keeps its own", async () => {
    const db = await server.fresh();
    expect((await runMain([], { url: db.url })).code).toBe(0);
    const plain = await snapshotOf(db);
    // With platform on the search_path, PostgreSQL's deparsers would leave out "platform." everywhere.
    const platformFirst = postgres(db.url, { max: 1, onnotice: () => undefined, connection: { search_path: "platform, public" } });
    try {
      expect(await takeSnapshot(platformFirst, { exclude: TRACKING_TABLES })).toEqual(plain);
      const inTransaction = await platformFirst.begin(async (tx) => {
        const snapshot = await takeSnapshot(tx, { exclude: TRACKING_TABLES });
        const [row] = await tx<{ search_path: string }[]>`select current_setting('search_path') as search_path`;
        return { snapshot, searchPath: row!.search_path };
      });
      expect(inTransaction).toEqual({ snapshot: plain, searchPath: "platform, public" });
    } finally {
      await platformFirst.end();
    }
    expect(plain.indexes.find((index) => index.name === "platform.users_active_org_id_idx")?.definition).toBe(
      "CREATE INDEX users_active_org_id_idx ON platform.users USING btree (active_org_id) WHERE (active_org_id IS NOT NULL)",
    );
  });

  test("inside a transaction it sees that transaction's own changes", async () => {
    const db = await server.fresh();
    const before = await snapshotOf(db);
    const inside = await db.sql.begin(async (tx) => {
      await tx`create table public.drafts (id int)`;
      return takeSnapshot(tx, { exclude: [] });
    });
    expect(diffSnapshots(before, inside).map(describeDifference)).toEqual(["table public.drafts added (1 column, 1 grant)"]);
  });
});

describe("only the schema is in the snapshot", () => {
  test("rows, sequence values and a grant revoked back to the default change nothing", async () => {
    const db = await server.fresh();
    await db.sql
      .unsafe(
        `create schema app;
         create table app.items (id bigint generated always as identity primary key, name text not null);`,
      )
      .simple();
    const before = await snapshotOf(db);
    await db.sql
      .unsafe(
        `insert into app.items (name) select 'item ' || n from generate_series(1, 50) as n;
         select setval(pg_get_serial_sequence('app.items', 'id'), 1000);
         grant select on app.items to public;
         revoke select on app.items from public;
         grant usage on schema app to public;
         revoke usage on schema app from public;
         analyze app.items;`,
      )
      .simple();
    const after = await snapshotOf(db);
    expect(after).toEqual(before);
    expect(snapshotHash(after)).toBe(snapshotHash(before));
  });

  test("an extension is one entry: its own functions and types are left out", async () => {
    const db = await server.fresh();
    const before = await snapshotOf(db);
    await db.sql`create extension citext`;
    const [extension] = await db.sql<{ version: string }[]>`select extversion as version from pg_extension where extname = 'citext'`;
    expect(diffSnapshots(before, await snapshotOf(db)).map(describeDifference)).toEqual([`extension citext added (version ${extension!.version} in schema public)`]);
  });

  test("an excluded table is left out with everything of its own: columns, constraints, indexes, sequence, trigger, policy, grants", async () => {
    const db = await server.fresh();
    await db.sql
      .unsafe(
        `create schema app;
         create function app.touch() returns trigger language plpgsql as $$ begin return new; end $$;`,
      )
      .simple();
    const before = await takeSnapshot(db.sql, { exclude: ["app.ledger"] });
    await db.sql
      .unsafe(
        `create table app.ledger (id bigint generated always as identity primary key, note text check (note <> ''));
         create index ledger_note_idx on app.ledger (note);
         create trigger ledger_touch before update on app.ledger for each row execute function app.touch();
         alter table app.ledger enable row level security;
         create policy ledger_all on app.ledger using (true);
         grant select (note) on app.ledger to public;`,
      )
      .simple();
    expect(await takeSnapshot(db.sql, { exclude: ["app.ledger"] })).toEqual(before);
    expect(diffSnapshots(before, await takeSnapshot(db.sql, { exclude: [] })).map(describeDifference)).toEqual([
      "table app.ledger added (2 columns, 2 constraints, 2 indexes, 1 sequence, 1 trigger, 1 policy, 3 grants)",
    ]);
  });
});

describe("differences", () => {
  const BASE = `
    create schema app;
    create table app.users (id int primary key, email text not null);
    create index users_email_idx on app.users (email);
    create policy users_self on app.users using (id = 1);
    create function app.next_id(n int) returns int language sql immutable as 'select n + 1';`;

  const CHANGES = `
    alter table app.users add column active_org_id uuid;
    drop index app.users_email_idx;
    create index users_email_idx on app.users (lower(email));
    drop policy users_self on app.users;
    create or replace function app.next_id(n int) returns int language sql immutable as 'select n + 2';
    create table app.widgets (id bigint generated always as identity primary key, name text);`;

  async function beforeAndAfter(): Promise<{ before: SchemaSnapshot; after: SchemaSnapshot }> {
    const db = await server.fresh();
    await db.sql.unsafe(BASE).simple();
    const before = await snapshotOf(db);
    await db.sql.unsafe(CHANGES).simple();
    return { before, after: await snapshotOf(db) };
  }

  const sha = (body: string) => createHash("sha256").update(body).digest("hex").slice(0, 12);

  test("hand-made changes read as one line each, in kind order; a new table carries what came with it", async () => {
    const { before, after } = await beforeAndAfter();
    const differences = diffSnapshots(before, after);
    expect(differences.map(describeDifference)).toEqual([
      // The grants: the owner's, on the table and on its identity sequence.
      "table app.widgets added (2 columns, 1 constraint, 1 index, 1 sequence, 2 grants)",
      "column app.users.active_org_id added (uuid, nullable)",
      "index app.users_email_idx changed: definition: CREATE INDEX users_email_idx ON app.users USING btree (email) → CREATE INDEX users_email_idx ON app.users USING btree (lower(email))",
      `function app.next_id(integer) changed: body sha256: ${sha("select n + 1")} → ${sha("select n + 2")}`,
      "policy app.users.users_self removed (permissive for all to PUBLIC using (id = 1))",
    ]);
    expect(differences[1]).toEqual({ kind: "column", object: "app.users.active_org_id", change: "added", detail: "uuid, nullable" });
    expect(diffSnapshots(after, before).map(describeDifference)).toEqual([
      "table app.widgets removed (2 columns, 1 constraint, 1 index, 1 sequence, 2 grants)",
      "column app.users.active_org_id removed (uuid, nullable)",
      "index app.users_email_idx changed: definition: CREATE INDEX users_email_idx ON app.users USING btree (lower(email)) → CREATE INDEX users_email_idx ON app.users USING btree (email)",
      `function app.next_id(integer) changed: body sha256: ${sha("select n + 2")} → ${sha("select n + 1")}`,
      "policy app.users.users_self added (permissive for all to PUBLIC using (id = 1))",
    ]);
    expect(diffSnapshots(after, after)).toEqual([]);
    expect(snapshotHash(after)).not.toBe(snapshotHash(before));
  });

  test("a snapshot stored as jsonb and read back compares and hashes as the original; another format is not comparable", async () => {
    const { before, after } = await beforeAndAfter();
    const db = await server.fresh();
    // jsonb keeps its keys in its own order, not the snapshot's.
    const [row] = await db.sql<{ stored: string }[]>`select (${JSON.stringify(before)}::text::jsonb)::text as stored`;
    expect(row!.stored).not.toBe(JSON.stringify(before));
    const stored = parseStoredSnapshot(JSON.parse(row!.stored));
    expect(stored).toBeDefined();
    expect(snapshotHash(stored!)).toBe(snapshotHash(before));
    expect(diffSnapshots(stored!, after)).toEqual(diffSnapshots(before, after));
    expect(diffSnapshots(stored!, before)).toEqual([]);
    expect(parseStoredSnapshot({ ...before, format: 0 })).toBeUndefined();
    expect(parseStoredSnapshot({ format: 1 })).toBeUndefined();
  });
});
