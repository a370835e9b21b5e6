/**
 * `verify-rollbacks` through the job's main() against a real PostgreSQL: every pair of the
 * platform migrations restores the schema, an incomplete rollback is named with what it left
 * behind, failures are located, and the scratch database never outlives the run (SIGTERM
 * included, sent to the job as a child process).
 */
import { describe, expect, test } from "bun:test";
import { TEST_PASSWORD, type TestDatabase, useTestServer } from "./support/postgres.ts";
import { PLATFORM_APPLIED, failure, migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { watchBothStreams } from "./support/watch-output.ts";
import { catalogPicture } from "./support/catalog.ts";

const server = useTestServer();

const SCRATCH_PREFIX = "studio_verify_rollbacks_";

function verify(db: TestDatabase, migrationsDir?: string, args: string[] = []): Promise<RunResult> {
  return runMain(["verify-rollbacks", ...args], { url: db.url, ...(migrationsDir ? { migrationsDir } : {}) });
}

function events(result: RunResult, name: string) {
  return result.events.filter((e) => e.event === name);
}

/** The scratch database the run created; it must be the one it dropped, and gone from the server. */
async function expectScratchDropped(db: TestDatabase, result: RunResult): Promise<void> {
  const created = events(result, "scratch_created").map((e) => e.database);
  expect(created).toHaveLength(1);
  expect(String(created[0])).toStartWith(SCRATCH_PREFIX);
  expect(events(result, "scratch_dropped").map((e) => e.database)).toEqual(created);
  const left = await db.sql<{ datname: string }[]>`select datname from pg_database where datname like ${`${SCRATCH_PREFIX}%`}`;
  expect(left.map((row) => row.datname)).toEqual([]);
}

/** Verification ignores holds: 007 is checked with the rest. */
const PLATFORM_PAIRS = [...PLATFORM_APPLIED, "007_restrictive_rls_policies"].sort();

describe("verify-rollbacks over the platform migrations", () => {
  test("all eight pairs restore the schema (007 included, holds are ignored); exit 0, the scratch database is gone, the real one untouched", async () => {
    const db = await server.fresh();
    const untouched = await catalogPicture(db.sql);
    const result = await verify(db);
    expect(result.code).toBe(0);
    expect(events(result, "rollback_verified").map((e) => e.migration)).toEqual(PLATFORM_PAIRS);
    expect(events(result, "rollback_verified")[6]).toMatchObject({ rollback: "007_rollback.sql", file: "007_restrictive_rls_policies.sql" });
    expect(events(result, "rollback_mismatch")).toEqual([]);
    expect(events(result, "run_finished")[0]).toMatchObject({ verified: 8, mismatch: 0, no_rollback: 0, migration_failed: 0, rollback_failed: 0, reapply_failed: 0 });
    expect(result.stdout).toContain("007      007_restrictive_rls_policies.sql         007_rollback.sql  restores the schema\n");
    await expectScratchDropped(db, result);
    expect(await catalogPicture(db.sql)).toBe(untouched);
  });
});

const WIDGETS = {
  "001_create_widgets.sql": "create schema app;\ncreate table app.widgets (id bigint generated always as identity primary key, name text not null);\n",
  "001_rollback.sql": "drop table app.widgets;\ndrop schema app;\n",
};

describe("a rollback that does not restore the schema", () => {
  test("forgetting an index: exit 4, the index named; the pairs after it are still verified from the migration's own schema", async () => {
    const dir = await migrationsFolder({
      ...WIDGETS,
      "002_index_widget_names.sql": "alter table app.widgets add column color text;\ncreate index widgets_name_idx on app.widgets (name);\n",
      "002_rollback.sql": "alter table app.widgets drop column color;\n",
      // Fails if 002's rollback had been left committed: its index would already exist.
      "003_rebuild_name_index.sql": "drop index app.widgets_name_idx;\ncreate index widgets_name_idx on app.widgets (name, id);\n",
      "003_rollback.sql": "drop index app.widgets_name_idx;\ncreate index widgets_name_idx on app.widgets (name);\n",
      "004_create_gadgets.sql": "create table app.gadgets (id int);\n",
    });
    const db = await server.fresh();
    const result = await verify(db, dir);
    expect(result.code).toBe(4);
    const missingIndex = "index app.widgets_name_idx added (CREATE INDEX widgets_name_idx ON app.widgets USING btree (name))";
    expect(events(result, "rollback_mismatch")).toEqual([
      expect.objectContaining({
        level: "warn",
        migration: "002_index_widget_names",
        rollback: "002_rollback.sql",
        differences: [missingIndex],
        message: `002_rollback.sql does not restore the schema from before 002_index_widget_names.sql (1 difference): ${missingIndex}`,
      }),
    ]);
    expect(events(result, "rollback_verified").map((e) => e.migration)).toEqual(["001_create_widgets", "003_rebuild_name_index"]);
    expect(events(result, "rollback_missing")).toEqual([
      expect.objectContaining({ migration: "004_create_gadgets", message: "no rollback: 004_create_gadgets.sql has no 004_rollback.sql, so down cannot undo it" }),
    ]);
    expect(result.stdout).toContain(
      [
        "VERSION  MIGRATION                   ROLLBACK          RESULT",
        "001      001_create_widgets.sql      001_rollback.sql  restores the schema",
        "002      002_index_widget_names.sql  002_rollback.sql  does not restore the schema (1 difference from before the migration):",
        `    ${missingIndex}`,
        "003      003_rebuild_name_index.sql  003_rollback.sql  restores the schema",
        "004      004_create_gadgets.sql      -                 no rollback",
      ].join("\n"),
    );
    expect(events(result, "run_finished")[0]).toMatchObject({ verified: 2, mismatch: 1, no_rollback: 1 });
    await expectScratchDropped(db, result);
  });

  test("forgetting a column default and a function body: each named, as one document with --json", async () => {
    const dir = await migrationsFolder({
      ...WIDGETS,
      "002_default_names.sql": "alter table app.widgets alter column name set default 'unnamed';\n",
      "002_rollback.sql": "select 1;\n",
      "003_widget_count.sql": "create function app.widget_count() returns bigint language sql stable as $$ select count(*) from app.widgets $$;\n",
      "003_rollback.sql": "drop function app.widget_count();\n",
      "004_count_named_only.sql":
        "create or replace function app.widget_count() returns bigint language sql stable as $$ select count(*) from app.widgets where name <> 'unnamed' $$;\n",
      "004_rollback.sql": "select 1;\n",
    });
    const db = await server.fresh();
    const result = await verify(db, dir, ["--json"]);
    expect(result.code).toBe(4);
    const document = JSON.parse(result.stdout) as VerifyDocument;
    expect(document.scratch_database).toStartWith(SCRATCH_PREFIX);
    expect(document.summary).toEqual({ verified: 2, mismatch: 2, no_rollback: 0, migration_failed: 0, rollback_failed: 0, reapply_failed: 0, not_run: 0, total: 4 });
    expect(document.migrations.map((m) => [m.file, m.rollback, m.outcome])).toEqual([
      ["001_create_widgets.sql", "001_rollback.sql", "verified"],
      ["002_default_names.sql", "002_rollback.sql", "mismatch"],
      ["003_widget_count.sql", "003_rollback.sql", "verified"],
      ["004_count_named_only.sql", "004_rollback.sql", "mismatch"],
    ]);
    expect(document.migrations[1]!.differences).toEqual([
      {
        kind: "column",
        object: "app.widgets.name",
        change: "changed",
        detail: "default: none → 'unnamed'::text",
        text: "column app.widgets.name changed: default: none → 'unnamed'::text",
      },
    ]);
    const [functionChange] = document.migrations[3]!.differences;
    expect(functionChange).toMatchObject({ kind: "function", object: "app.widget_count()", change: "changed" });
    expect(functionChange!.text).toMatch(/^function app\.widget_count\(\) changed: body sha256: [0-9a-f]{12} → [0-9a-f]{12}$/);
    expect(document.migrations[0]).toEqual({
      version: 1,
      name: "001_create_widgets",
      file: "001_create_widgets.sql",
      rollback: "001_rollback.sql",
      hold_reason: null,
      outcome: "verified",
      differences: [],
      error: null,
    });
    await expectScratchDropped(db, result);
  });
});

interface VerifyDocument {
  readonly target: string;
  readonly scratch_database: string;
  readonly duration_ms: number;
  readonly migrations: readonly {
    readonly version: number;
    readonly name: string;
    readonly file: string;
    readonly rollback: string | null;
    readonly hold_reason: string | null;
    readonly outcome: string;
    readonly differences: readonly { kind: string; object: string; change: string; detail: string | null; text: string }[];
    readonly error: Record<string, unknown> | null;
  }[];
  readonly summary: Record<string, number>;
}

describe("what every kind of migration gets", () => {
  test("a no-transaction migration, a TypeScript down() and a held file are verified like any other", async () => {
    const dir = await migrationsFolder({
      ...WIDGETS,
      "002_index_concurrently.sql": "-- migrate:no-transaction\ncreate index concurrently widgets_name_idx on app.widgets (name);\n",
      "002_rollback.sql": "drop index app.widgets_name_idx;\n",
      "003_add_color.ts":
        "export async function up(sql) { await sql`alter table app.widgets add column color text`; }\n" +
        "export async function down(sql) { await sql`alter table app.widgets drop column color`; }\n",
      "004_later.sql": "-- migrate:hold waiting for the API\ncreate table app.later (id int);\n",
      "004_rollback.sql": "drop table app.later;\n",
    });
    const db = await server.fresh();
    const result = await verify(db, dir);
    expect(result.code).toBe(0);
    expect(events(result, "rollback_verified").map((e) => [e.migration, e.rollback])).toEqual([
      ["001_create_widgets", "001_rollback.sql"],
      ["002_index_concurrently", "002_rollback.sql"],
      ["003_add_color", "003_add_color.ts down()"],
      ["004_later", "004_rollback.sql"],
    ]);
    await expectScratchDropped(db, result);
  });
});

describe("failures", () => {
  test("a role that may not create databases: exit 3, saying what verify-rollbacks needs and the local alternative", async () => {
    const db = await server.fresh();
    const role = `no_createdb_${process.pid}`;
    await db.sql.unsafe(`create role ${role} login nocreatedb password '${TEST_PASSWORD}'`);
    const url = `postgresql://${role}:${encodeURIComponent(TEST_PASSWORD)}@127.0.0.1:${server.port}/${db.name}`;
    const result = await runMain(["verify-rollbacks"], { url, migrationsDir: await migrationsFolder({ "001_a.sql": "create table a (id bigint);\n" }) });
    expect(result.code).toBe(3);
    expect(failure(result)).toMatchObject({ code: "42501" });
    expect(failure(result).message).toContain("That needs a role allowed to create databases (CREATEDB); or run verify-rollbacks locally with --embedded");
  });

  test("a rollback that fails to run: exit 1 with file:line, the next pairs verified; a failing migration stops the rest", async () => {
    const dir = await migrationsFolder({
      ...WIDGETS,
      "002_add_color.sql": "alter table app.widgets add column color text;\n",
      "002_rollback.sql": "alter table app.widgets drop column color;\ndrop table app.nothing_here;\n",
      "003_add_size.sql": "alter table app.widgets add column size int;\n",
      "003_rollback.sql": "alter table app.widgets drop column size;\n",
      "004_broken.sql": "create table app.parts (id int);\n\nalter table app.parts add column kind no_such_type;\n",
      "004_rollback.sql": "drop table app.parts;\n",
      "005_after.sql": "create table app.after (id int);\n",
    });
    const db = await server.fresh();
    const result = await verify(db, dir);
    expect(result.code).toBe(1);
    expect(events(result, "rollback_failed")).toEqual([
      expect.objectContaining({ level: "error", migration: "002_add_color", file: "002_rollback.sql", line: 2, column: 1, code: "42P01" }),
    ]);
    expect(events(result, "rollback_failed")[0]!.message).toBe(
      [
        '002_rollback.sql:2:1: table "nothing_here" does not exist (SQLSTATE 42P01)',
        "  statement: drop table app.nothing_here",
        "  the rollback's transaction was rolled back, and verification went on from the migration's own schema",
      ].join("\n"),
    );
    expect(events(result, "rollback_verified").map((e) => e.migration)).toEqual(["001_create_widgets", "003_add_size"]);
    expect(events(result, "migration_failed")).toEqual([
      expect.objectContaining({ level: "error", migration: "004_broken", file: "004_broken.sql", line: 3, code: "42704" }),
    ]);
    expect(events(result, "migration_not_run").map((e) => e.migration)).toEqual(["005_after"]);
    expect(result.stdout).toContain(
      [
        "004      004_broken.sql          004_rollback.sql  the migration failed:",
        '    004_broken.sql:3:39: type "no_such_type" does not exist (SQLSTATE 42704)',
        "      statement: alter table app.parts add column kind no_such_type",
        "005      005_after.sql           -                 not run (a migration before it failed)",
      ].join("\n"),
    );
    expect(events(result, "run_finished")[0]).toMatchObject({ verified: 2, rollback_failed: 1, migration_failed: 1, not_run: 1 });
    await expectScratchDropped(db, result);
  });

  test("a rollback file with no statements is refused before any database is created (exit 4)", async () => {
    const dir = await migrationsFolder({ ...WIDGETS, "001_rollback.sql": "-- to be written\n" });
    const db = await server.fresh();
    const result = await verify(db, dir);
    expect(result.code).toBe(4);
    expect(failure(result).message).toContain("001_rollback.sql: the rollback of 001_create_widgets has no SQL statements (only comments)");
    expect(events(result, "scratch_created")).toEqual([]);
  });

  test("SIGTERM while a migration runs: the statement is cancelled, the scratch database dropped, exit 143", async () => {
    const dir = await migrationsFolder({
      "001_slow.sql": "create table slow (id int);\nselect pg_sleep(60);\n",
      "001_rollback.sql": "drop table slow;\n",
    });
    const db = await server.fresh();
    const job = watchBothStreams(["verify-rollbacks"], { url: db.url, migrationsDir: dir });
    await job.until("stdout", (output) => output.includes('"event":"scratch_created"'));
    job.child.kill("SIGTERM");
    const result = await job.result();
    expect(result.code).toBe(143);
    expect(failure(result)).toMatchObject({ error: "cancelled", signal: "SIGTERM" });
    await expectScratchDropped(db, result);
  });
});
