/**
 * The operator commands: down (rollbacks, newest first, each with its tracking row), baseline
 * (adopting a database migrated by hand) and create (the next migration from a template), through
 * the job's main() against a real PostgreSQL (Ctrl-C at the pause, through a real terminal).
 */
import { describe, expect, test } from "bun:test";
import { appendFile, cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { PLATFORM_APPLIED, PLATFORM_MIGRATIONS, failure, migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { catalogPicture, tableExists, trackedStatuses, lastRun } from "./support/catalog.ts";
import { schemaSnapshot } from "./support/schema-snapshot.ts";
import { CTRL_C, runAtTerminal } from "./support/terminal.ts";
import { create } from "../src/commands/create.ts";
import { RefusedError } from "../src/shared/errors.ts";
import type { Logger } from "../src/shared/log.ts";

const server = useTestServer();

const HOLD_LINE = "-- migrate:hold requires session context middleware\n";

/** A copy of the platform migrations up to `lastVersion`; with `releaseHold`, 007 loses its hold line. */
async function platformCopy(lastVersion: number, { releaseHold = false } = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "migrate-platform-"));
  for (const name of await readdir(PLATFORM_MIGRATIONS)) {
    if (Number(name.slice(0, 3)) <= lastVersion) await cp(join(PLATFORM_MIGRATIONS, name), join(dir, name));
  }
  if (releaseHold) {
    const held = join(dir, "007_restrictive_rls_policies.sql");
    const text = await readFile(held, "utf8");
    expect(text.startsWith(HOLD_LINE)).toBe(true);
    await writeFile(held, text.slice(HOLD_LINE.length));
  }
  return dir;
}

function runner(db: TestDatabase | undefined, migrationsDir: string) {
  return (args: string[] = []) => runMain(args, { url: db?.url, migrationsDir });
}

async function migrated(migrationsDir: string) {
  const db = await server.fresh();
  const run = runner(db, migrationsDir);
  const result = await run();
  expect(result.code).toBe(0);
  return { db, run };
}

/**
 * The job's own bookkeeping differs by design (tracking rows say when and by whom; the run history
 * grows with every run); tests compare tracking rows on their own, with trackedStatuses.
 */
function snapshot(db: TestDatabase) {
  return schemaSnapshot(db.sql, { ignoreRowsOf: ["platform.schema_migrations", "platform.schema_migrations_runs"] });
}

function named(result: RunResult, event: string): unknown[] {
  return result.events.filter((e) => e.event === event).map((e) => e.migration);
}

function messages(result: RunResult, event: string): string[] {
  return result.events.filter((e) => e.event === event).map((e) => e.message);
}

const PLATFORM_001_TO_005 = {
  "001_create_platform_schema": "applied",
  "002_platform_billing_schema": "applied",
  "003_user_management_and_permissions": "applied",
  "004_create_lancio_org": "applied",
  "005_create_audit_logs": "applied",
};

/** The database a fresh deploy of 001-005 leaves: what `down --to 005` must return to. */
async function snapshotOf001To005() {
  const dir = await platformCopy(5);
  const { db } = await migrated(dir);
  await rm(dir, { recursive: true });
  return snapshot(db);
}

describe("down on the platform migrations", () => {
  test("down --to 005 rolls back 008, 007, 006 to a database like one that only had 001-005, and up restores it exactly", async () => {
    const dir = await platformCopy(8, { releaseHold: true });
    const { db, run } = await migrated(dir);
    const full = await snapshot(db);

    const result = await run(["down", "--to", "005", "--yes"]);
    expect(result.code).toBe(0);
    const rolledBack = ["008_add_active_org_tracking", "007_restrictive_rls_policies", "006_add_platform_databases_table"];
    expect(named(result, "rollback_started")).toEqual(rolledBack);
    expect(named(result, "rollback_applied")).toEqual(rolledBack);
    expect(result.events.find((e) => e.event === "run_finished")).toMatchObject({ rolled_back: 3, held: 0 });
    expect(await trackedStatuses(db.sql)).toEqual(PLATFORM_001_TO_005);
    const afterDown = await snapshot(db);
    expect(afterDown).not.toEqual(full);
    expect(afterDown).toEqual(await snapshotOf001To005());

    const again = await run();
    expect(again.code).toBe(0);
    expect(named(again, "migration_applied")).toEqual([...rolledBack].reverse());
    expect(await snapshot(db)).toEqual(full);
    await rm(dir, { recursive: true });
  });

  test("with 007 held, down --to 005 rolls back 008 and 006 and leaves 007's held row as it was", async () => {
    const { db, run } = await migrated(PLATFORM_MIGRATIONS);
    const full = await snapshot(db);
    const heldRow = async () => (await db.sql`select * from platform.schema_migrations where version = 7`)[0];
    const held = await heldRow();
    expect(held).toMatchObject({ status: "held", hold_reason: "requires session context middleware" });

    const result = await run(["down", "--to", "005", "--yes"]);
    expect(result.code).toBe(0);
    expect(named(result, "rollback_applied")).toEqual(["008_add_active_org_tracking", "006_add_platform_databases_table"]);
    expect(result.events.find((e) => e.event === "run_finished")).toMatchObject({ rolled_back: 2, held: 1 });
    expect(await heldRow()).toEqual(held!);
    expect(await trackedStatuses(db.sql)).toEqual({ ...PLATFORM_001_TO_005, "007_restrictive_rls_policies": "held" });
    expect(await snapshot(db)).toEqual(await snapshotOf001To005());

    const again = await run();
    expect(again.code).toBe(0);
    expect(named(again, "migration_applied")).toEqual(["006_add_platform_databases_table", "008_add_active_org_tracking"]);
    expect(named(again, "migration_held")).toEqual(["007_restrictive_rls_policies"]);
    expect(await snapshot(db)).toEqual(full);
  });
});

const small = {
  "001_first.sql": "create table first (id int primary key);\n",
  "001_rollback.sql": "drop table first;\n",
  "002_second.sql": "create table second (id int primary key);\ninsert into second values (1);\n",
  "002_rollback.sql": "-- children first\ndelete from second;\ndrop table second;\n",
  "003_third.sql": "create table third (id int primary key);\n",
  "003_rollback.sql": "drop table third;\n",
};

describe("down", () => {
  test("without --yes and without a terminal: exit 2 after showing the plan, nothing changed", async () => {
    const { db, run } = await migrated(await migrationsFolder(small));
    const before = await catalogPicture(db.sql);
    const result = await run(["down", "--to", "1"]);
    expect(result.code).toBe(2);
    expect(failure(result).message).toContain("down changes the database and there is no terminal to confirm at: add --yes to go ahead");
    expect(messages(result, "confirm_plan")).toEqual([
      "roll back 003_third with 003_rollback.sql (1 statement)",
      "roll back 002_second with 002_rollback.sql (2 statements)",
    ]);
    expect(named(result, "rollback_started")).toEqual([]);
    expect(await catalogPicture(db.sql)).toBe(before);
  });

  test("every problem in the range is refused together before anything runs: no rollback, drift, transaction control, an empty rollback", async () => {
    const dir = await migrationsFolder({
      "001_first.sql": small["001_first.sql"],
      "001_rollback.sql": small["001_rollback.sql"],
      "002_second.sql": small["002_second.sql"],
      "003_third.sql": small["003_third.sql"],
      "003_rollback.sql": "drop table third;\ncommit;\n",
      "004_fourth.sql": "create table fourth (id int);\n",
      "004_rollback.sql": "drop table fourth;\n",
      "005_fifth.sql": "create table fifth (id int);\n",
      "005_rollback.sql": "-- to be written\n",
    });
    const { db, run } = await migrated(dir);
    await writeFile(join(dir, "004_fourth.sql"), "create table fourth (id bigint);\n");
    const before = await catalogPicture(db.sql);

    const all = await run(["down", "--to", "0", "--yes"]);
    expect(all.code).toBe(4);
    const event = failure(all);
    expect(event.files).toEqual(["005_rollback.sql", "004_fourth.sql", "003_rollback.sql", "002_second.sql"]);
    expect(event.message).toContain("005_rollback.sql: the rollback of 005_fifth has no SQL statements (only comments)");
    expect(event.message).toContain("004_fourth.sql: applied migration was changed after it was applied (checksum differs); its rollback may not undo what was applied");
    expect(event.message).toContain("resolve 4 --accept-checksum");
    expect(event.message).toContain('003_rollback.sql:2: transaction control statement "commit" in a file that runs inside a transaction');
    expect(event.message).toContain("002_second.sql: applied migration 002_second has no rollback (no 002_rollback.sql)");
    expect(event.message).toContain("down --to 2");
    expect(named(all, "rollback_started")).toEqual([]);
    expect(await catalogPicture(db.sql)).toBe(before);

    // Only the range counts: above 3, the missing rollback of 002 is no reason to refuse.
    expect(failure(await run(["down", "--to", "3", "--yes"])).files).toEqual(["005_rollback.sql", "004_fourth.sql"]);
    expect(await catalogPicture(db.sql)).toBe(before);
  });

  test("down --to a version at or above the highest applied: nothing to roll back, exit 0 without confirmation", async () => {
    const { db, run } = await migrated(await migrationsFolder(small));
    const before = await catalogPicture(db.sql);
    for (const to of ["099", "3"]) {
      const result = await run(["down", "--to", to]);
      expect(result.code).toBe(0);
      expect(result.events.find((e) => e.event === "run_finished")).toMatchObject({
        message: `nothing to roll back: no migration above version ${Number(to)} is applied`,
        rolled_back: 0,
      });
      expect(messages(result, "confirm_plan")).toEqual([]);
    }
    expect(await catalogPicture(db.sql)).toBe(before);
  });

  test("a failing rollback exits 1 with file:line; its migration stays applied, the ones before it stay rolled back", async () => {
    const dir = await migrationsFolder({ ...small, "002_rollback.sql": "drop table second;\n\nselect no_such_column from first;\n" });
    const { db, run } = await migrated(dir);
    const result = await run(["down", "--to", "0", "--yes"]);
    expect(result.code).toBe(1);
    const event = failure(result);
    expect(event).toMatchObject({ file: "002_rollback.sql", line: 3, column: 8, code: "42703" });
    expect(event.message).toContain("002_rollback.sql:3:8: column \"no_such_column\" does not exist");
    expect(event.message).toContain("the rollback's transaction was rolled back: 002_second is still applied and recorded; 003_third was rolled back before it and stays so");
    expect(named(result, "rollback_applied")).toEqual(["003_third"]);
    // The last line says what of this run holds now, as up's does.
    expect(event).toMatchObject({ rolled_back: ["003_third"], rolled_back_count: 1, stopped_at: "002_second", not_attempted: ["001_first"], not_attempted_count: 1 });
    expect(event.message).toEndWith("\n    in this run: rolled back 003_third (undone now, under the release still serving); stopped at 002_second; not attempted: 001_first");
    expect(await trackedStatuses(db.sql)).toEqual({ "001_first": "applied", "002_second": "applied" });
    expect(await tableExists(db.sql, "second")).toBe(true);
    expect(await tableExists(db.sql, "third")).toBe(false);
  });
});

describe("down with TypeScript migrations", () => {
  const labelsUpOnly = `import type { TransactionSql } from "postgres";

export async function up(sql: TransactionSql) {
  await sql\`create table labels (id int primary key)\`;
}
`;
  const labelsWithDown = (body: string) => `${labelsUpOnly}
export async function down(sql: TransactionSql) {
${body}
}
`;
  // A rollback file that would leave a trace: it must not run when the module has down().
  const traceRollback = "drop table labels;\ncreate table rollback_file_ran (id int);\n";

  test("runs the module's down() in preference to its rollback file", async () => {
    const dir = await migrationsFolder({ ...small, "004_labels.ts": labelsWithDown("  await sql`drop table labels`;"), "004_rollback.sql": traceRollback });
    const { db, run } = await migrated(dir);
    const result = await run(["down", "--to", "3", "--yes"]);
    expect(result.code).toBe(0);
    expect(messages(result, "confirm_plan")).toEqual(["roll back 004_labels with TypeScript down()"]);
    expect(named(result, "rollback_applied")).toEqual(["004_labels"]);
    expect(await tableExists(db.sql, "labels")).toBe(false);
    expect(await tableExists(db.sql, "rollback_file_ran")).toBe(false);
    expect(Object.keys(await trackedStatuses(db.sql))).toEqual(["001_first", "002_second", "003_third"]);
  });

  test("without down() it runs the rollback file, and without either it is refused", async () => {
    const dir = await migrationsFolder({ ...small, "004_labels.ts": labelsUpOnly, "004_rollback.sql": traceRollback });
    const { db, run } = await migrated(dir);
    await rm(join(dir, "004_rollback.sql"));
    const refused = await run(["down", "--to", "3", "--yes"]);
    expect(refused.code).toBe(4);
    expect(failure(refused).message).toContain("004_labels.ts: applied migration 004_labels has no rollback (no 004_rollback.sql and no down() export)");

    await writeFile(join(dir, "004_rollback.sql"), traceRollback);
    const result = await run(["down", "--to", "3", "--yes"]);
    expect(result.code).toBe(0);
    expect(messages(result, "confirm_plan")).toEqual(["roll back 004_labels with 004_rollback.sql (2 statements)"]);
    expect(await tableExists(db.sql, "labels")).toBe(false);
    expect(await tableExists(db.sql, "rollback_file_ran")).toBe(true);
  });

  test("a down() that throws exits 1 naming the module's line, and the migration stays applied", async () => {
    const dir = await migrationsFolder({ ...small, "004_labels.ts": labelsWithDown("  await sql`drop table labels`;\n  await sql`drop table no_such_table`;") });
    const { db, run } = await migrated(dir);
    const result = await run(["down", "--to", "3", "--yes"]);
    expect(result.code).toBe(1);
    expect(failure(result)).toMatchObject({ file: "004_labels.ts", line: 9, code: "42P01" });
    expect(failure(result).message).toContain("004_labels is still applied and recorded");
    expect(await tableExists(db.sql, "labels")).toBe(true);
    expect(await trackedStatuses(db.sql)).toMatchObject({ "004_labels": "applied" });
  });
});

/** Applies 001-006 and 008 the way they reached production: by hand, with no tracking table. */
async function migratedByHand(): Promise<TestDatabase> {
  const db = await server.fresh();
  for (const name of (await readdir(PLATFORM_MIGRATIONS)).sort()) {
    if (!name.endsWith(".sql") || name.includes("rollback") || name.startsWith("007_")) continue;
    await db.sql.unsafe(await readFile(join(PLATFORM_MIGRATIONS, name), "utf8")).simple();
  }
  return db;
}

describe("baseline", () => {
  test("records 001-006 and 008 as applied without running them and 007 as held; the next up applies nothing", async () => {
    const db = await migratedByHand();
    const run = runner(db, PLATFORM_MIGRATIONS);
    const before = await snapshot(db);

    const result = await run(["baseline", "--to", "008", "--yes"]);
    expect(result.code).toBe(0);
    const adopted = [...PLATFORM_APPLIED];
    expect(named(result, "migration_baselined")).toEqual(adopted);
    expect(named(result, "migration_held")).toEqual(["007_restrictive_rls_policies"]);
    expect(result.events.find((e) => e.event === "run_finished")).toMatchObject({ baselined: 7, held: 1 });

    const rows = await db.sql`select name, checksum, status, applied_by, execution_ms, hold_reason, applied_at is not null as dated
      from platform.schema_migrations order by version`;
    const expected = await Promise.all(
      [...adopted.slice(0, 6), "007_restrictive_rls_policies", adopted[6]!].map(async (name) => {
        const checksum = new Bun.CryptoHasher("sha256").update(await readFile(join(PLATFORM_MIGRATIONS, `${name}.sql`))).digest("hex");
        return name.startsWith("007_")
          ? { name, checksum, status: "held", applied_by: expect.any(String), execution_ms: null, hold_reason: "requires session context middleware", dated: false }
          : { name, checksum, status: "applied", applied_by: "baseline", execution_ms: null, hold_reason: null, dated: true };
      }),
    );
    expect([...rows]).toEqual(expected);

    const up = await run();
    expect(up.code).toBe(0);
    expect(named(up, "migration_applied")).toEqual([]);
    expect(up.events.find((e) => e.event === "run_finished")).toMatchObject({ applied: 0, already_applied: 7, held: 1 });
    // Seed rows (plans, roles, the Lancio organization) would have doubled or failed had anything run again.
    expect((await snapshot(db)).rowCounts).toEqual(before.rowCounts);
  });

  test("an empty database is refused, naming each difference; --skip-schema-check adopts it anyway, and the log and the history say so", async () => {
    const dir = await migrationsFolder(small);
    const db = await server.fresh();
    const run = runner(db, dir);
    const refused = await run(["baseline", "--to", "2", "--yes"]);
    expect(refused.code).toBe(4);
    expect(failure(refused)).toMatchObject({ checks: ["baseline_schema"] });
    expect(failure(refused).message).toContain("the live schema is not what 001_first.sql to 002_second.sql build (2 differences, live compared with built)");
    expect(failure(refused).message).toContain("table public.first removed");
    expect(failure(refused).message).toContain("baseline --to 2 --skip-schema-check");
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);
    expect([...(await db.sql`select datname from pg_database where datname like 'studio_baseline_%'`)]).toEqual([]);

    const forced = await run(["baseline", "--to", "2", "--yes", "--skip-schema-check"]);
    expect(forced.code).toBe(0);
    expect(forced.events.find((e) => e.event === "schema_check_skipped")?.level).toBe("warn");
    expect(await trackedStatuses(db.sql)).toEqual({ "001_first": "applied", "002_second": "applied" });
    expect(await lastRun(db.sql)).toMatchObject({ command: "baseline --skip-schema-check", outcome: "succeeded" });
  });

  test("a database whose schema was applied by hand passes the check; one with an extra column is refused, naming it", async () => {
    const dir = await migrationsFolder(small);
    const byHand = await server.fresh();
    await byHand.sql.unsafe(`${small["001_first.sql"]}${small["002_second.sql"]}`);
    expect((await runner(byHand, dir)(["baseline", "--to", "2", "--yes"])).code).toBe(0);
    expect(await trackedStatuses(byHand.sql)).toEqual({ "001_first": "applied", "002_second": "applied" });

    const drifted = await server.fresh();
    await drifted.sql.unsafe(`${small["001_first.sql"]}${small["002_second.sql"]}alter table second add column note text;`);
    const refused = await runner(drifted, dir)(["baseline", "--to", "2", "--yes"]);
    expect(refused.code).toBe(4);
    expect(failure(refused).message).toContain("column public.second.note added");
  });

  test("a tracked database is refused, naming what is recorded; without --yes: exit 2 and no tracking table", async () => {
    const dir = await migrationsFolder(small);
    const db = await server.fresh();
    const run = runner(db, dir);
    await db.sql.unsafe(`${small["001_first.sql"]}${small["002_second.sql"]}`);

    const unconfirmed = await run(["baseline", "--to", "2"]);
    expect(unconfirmed.code).toBe(2);
    expect(messages(unconfirmed, "confirm_plan")).toEqual(["record 001_first as applied, without running it", "record 002_second as applied, without running it"]);
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);

    expect((await run(["baseline", "--to", "2", "--yes"])).code).toBe(0);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_first": "applied", "002_second": "applied" });
    const before = await catalogPicture(db.sql);
    const twice = await run(["baseline", "--to", "3", "--yes", "--skip-schema-check"]);
    expect(twice.code).toBe(4);
    expect(failure(twice).files).toEqual(["001_first.sql", "002_second.sql"]);
    expect(failure(twice).message).toContain("001_first.sql: already recorded as applied: this database is already tracked");
    expect(failure(twice).message).toContain("bun release/migrate.ts status");
    expect(await catalogPicture(db.sql)).toBe(before);
  });

  test("a version below every file is refused; --to 0 adopts a database whose objects are not the migrations' work", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder(small);
    await Promise.all([rm(join(dir, "001_first.sql")), rm(join(dir, "001_rollback.sql"))]);
    const below = await runner(db, dir)(["baseline", "--to", "1", "--yes"]);
    expect(below.code).toBe(4);
    expect(failure(below).message).toContain("no migration file has a version at or below 1 (the lowest is 002_second.sql)");
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);

    const none = await runner(db, dir)(["baseline", "--to", "0", "--yes"]);
    expect(none.code).toBe(0);
    expect(await trackedStatuses(db.sql)).toEqual({});
  });
});

describe("create", () => {
  test("writes the next migration and rollback, which the job refuses until written, then applies and rolls back", async () => {
    const dir = await platformCopy(8);
    const original = (await readdir(dir)).sort();
    const created = async () => (await readdir(dir)).filter((name) => !original.includes(name)).sort();

    const first = await runMain(["create", "add_widgets"], { migrationsDir: dir });
    expect(first.code).toBe(0);
    expect(await created()).toEqual(["009_add_widgets.sql", "009_rollback.sql"]);
    expect(first.events.find((e) => e.event === "migration_created")?.message).toStartWith(
      `created ${join(dir, "009_add_widgets.sql")} and ${join(dir, "009_rollback.sql")}`,
    );
    const template = await readFile(join(dir, "009_add_widgets.sql"), "utf8");
    expect(template).toContain("--   -- migrate:no-transaction\n");
    expect(template).toContain("--   -- migrate:hold <reason>\n");
    expect(template).toContain("009_rollback.sql");
    expect(await readFile(join(dir, "009_rollback.sql"), "utf8")).toContain("It must restore the schema exactly as it was before 009_add_widgets ran");

    expect((await runMain(["create", "add_widgets"], { migrationsDir: dir })).code).toBe(0);
    expect(await created()).toEqual(["009_add_widgets.sql", "009_rollback.sql", "010_add_widgets.sql", "010_rollback.sql"]);

    const db = await server.fresh();
    const run = runner(db, dir);
    const unwritten = await run();
    expect(unwritten.code).toBe(4);
    expect(failure(unwritten).files).toEqual(["009_add_widgets.sql", "010_add_widgets.sql"]);
    expect(failure(unwritten).message).toContain("009_add_widgets.sql: the file has no SQL statements (only comments)");
    expect(await tableExists(db.sql, "platform.users")).toBe(false);

    // As a developer would: write the first, delete the second.
    await appendFile(join(dir, "009_add_widgets.sql"), "create table platform.widgets (id int primary key);\n");
    await appendFile(join(dir, "009_rollback.sql"), "drop table platform.widgets;\n");
    await rm(join(dir, "010_add_widgets.sql"));
    await rm(join(dir, "010_rollback.sql"));
    const up = await run();
    expect(up.code).toBe(0);
    expect(named(up, "migration_applied").at(-1)).toBe("009_add_widgets");
    expect(await tableExists(db.sql, "platform.widgets")).toBe(true);

    const down = await run(["down", "--to", "008", "--yes"]);
    expect(down.code).toBe(0);
    expect(named(down, "rollback_applied")).toEqual(["009_add_widgets"]);
    expect(await tableExists(db.sql, "platform.widgets")).toBe(false);
    expect(await trackedStatuses(db.sql)).not.toHaveProperty("009_add_widgets");
    await rm(dir, { recursive: true });
  });

  test("keeps a wider version width, and starts at 001 in an empty folder", async () => {
    const wide = await migrationsFolder({ "0001_first.sql": small["001_first.sql"] });
    expect((await runMain(["create", "second"], { migrationsDir: wide })).code).toBe(0);
    expect((await readdir(wide)).sort()).toEqual(["0001_first.sql", "0002_rollback.sql", "0002_second.sql"]);

    const empty = await migrationsFolder({});
    expect((await runMain(["create", "first"], { migrationsDir: empty })).code).toBe(0);
    expect((await readdir(empty)).sort()).toEqual(["001_first.sql", "001_rollback.sql"]);
  });

  test("a name that is not snake_case is a usage error and writes nothing", async () => {
    const dir = await migrationsFolder(small);
    const result = await runMain(["create", "AddWidgets"], { migrationsDir: dir });
    expect(result.code).toBe(2);
    expect(failure(result).message).toContain('create takes one name in snake_case (lower-case words joined by _), e.g. create add_widgets; got "AddWidgets"');
    expect((await readdir(dir)).sort()).toEqual(Object.keys(small).sort());
  });

  // Called directly: through the entry point, a file in the way is refused by discovery before
  // create runs, so only a file appearing in between reaches this check.
  test("never overwrites: a file that appeared meanwhile is refused by name", async () => {
    const written: string[] = [];
    const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const fs = {
      readdir: async () => [],
      lstat: async () => ({ isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false }),
      readlink: async (path: string) => path,
      realpath: async (path: string) => path,
      readFile: async () => new Uint8Array(),
      writeNewFile: async (path: string) => {
        if (path.endsWith("001_rollback.sql")) throw Object.assign(new Error(`EEXIST: file already exists, open '${path}'`), { code: "EEXIST" });
        written.push(path);
      },
    };
    const attempt = create({ files: [], migrationsDir: "/migrations", fs, logger: quiet }, { migrationName: "first" });
    await expect(attempt).rejects.toThrow(RefusedError);
    await expect(attempt).rejects.toThrow("001_rollback.sql: already exists; create never overwrites a file");
    expect(written).toEqual(["/migrations/001_first.sql"]);
  });
});

describe("Ctrl-C at the terminal during the pause to confirm", () => {
  test("down: stops with exit 130, nothing rolled back, and its history row says cancelled", async () => {
    const dir = await platformCopy(6);
    const { db } = await migrated(dir);
    const before = await snapshot(db);
    const run = runAtTerminal(["down", "--to", "4"], { url: db.url, migrationsDir: dir });
    await run.until("press Ctrl-C to abort");
    run.type(CTRL_C);
    const result = await run.result();
    expect(result.code).toBe(130);
    expect(failure(result).message).toContain("waiting for the operator to confirm down, before it changed anything");
    expect(result.events.filter((e) => e.event === "rollback_started")).toEqual([]);
    expect(await snapshot(db)).toEqual(before);
    expect(Object.keys(await trackedStatuses(db.sql))).toHaveLength(6);
    expect(await lastRun(db.sql)).toMatchObject({ command: "down", outcome: "cancelled" });
  });

  test("baseline: stops with exit 130 and records nothing", async () => {
    const db = await server.fresh();
    await db.sql`create table stands_in_for_a_hand_made_schema (id int)`;
    const dir = await platformCopy(3);
    const run = runAtTerminal(["baseline", "--to", "3", "--skip-schema-check"], { url: db.url, migrationsDir: dir });
    await run.until("press Ctrl-C to abort");
    run.type(CTRL_C);
    const result = await run.result();
    expect(result.code).toBe(130);
    expect(result.events.filter((e) => e.event === "migration_baselined")).toEqual([]);
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);
  });
});
