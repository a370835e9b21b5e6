/**
 * History that must not be silently rewritten: drift, missing files, order, failed statements, and
 * no-transaction migrations that fail part-way, with the resolve command that settles each.
 */
import { describe, expect, test } from "bun:test";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { catalogPicture, tableExists, trackedStatuses } from "./support/catalog.ts";

const server = useTestServer();

const files = {
  "001_first.sql": "create table first (id int primary key);\n",
  "002_second.sql": "create table second (id int primary key);\n",
};

async function appliedSetup(extra: Record<string, string> = {}) {
  const db = await server.fresh();
  const dir = await migrationsFolder({ ...files, ...extra });
  const first = await runMain([], { url: db.url, migrationsDir: dir });
  expect(first.code).toBe(0);
  return { db, dir, run: (args: string[] = []) => runMain(args, { url: db.url, migrationsDir: dir }) };
}

describe("drift", () => {
  test("an applied file that changed stops the run before anything applies; --accept-checksum settles it", async () => {
    const { db, dir, run } = await appliedSetup();
    await writeFile(join(dir, "001_first.sql"), "create table first (id int primary key); -- edited\n");
    await writeFile(join(dir, "003_third.sql"), "create table third (id int);\n");
    const before = await catalogPicture(db.sql);
    const refused = await run();
    expect(refused.code).toBe(4);
    expect(failure(refused).message).toContain("001_first.sql");
    expect(failure(refused).message).toContain("resolve 1 --accept-checksum");
    expect(await catalogPicture(db.sql)).toBe(before);

    const [original] = await db.sql`select applied_at, applied_by, execution_ms from platform.schema_migrations where version = 1`;
    expect((await run(["resolve", "1", "--accept-checksum"])).code).toBe(0);
    // Who applied it and when is history: accepting a new checksum keeps it.
    expect((await db.sql`select applied_at, applied_by, execution_ms from platform.schema_migrations where version = 1`)[0]).toEqual(original!);
    expect((await run()).code).toBe(0);
    expect(await tableExists(db.sql, "third")).toBe(true);
  });

  test("an applied file that disappeared stops the run; --forget settles it", async () => {
    const { db, dir, run } = await appliedSetup();
    await rm(join(dir, "002_second.sql"));
    const before = await catalogPicture(db.sql);
    const refused = await run();
    expect(refused.code).toBe(4);
    expect(failure(refused).message).toContain("002_second.sql");
    expect(failure(refused).message).toContain("resolve 2 --forget");
    expect(await catalogPicture(db.sql)).toBe(before);

    const wrongAction = await run(["resolve", "2", "--accept-checksum"]);
    expect(wrongAction.code).toBe(4);
    expect((await run(["resolve", "2", "--forget"])).code).toBe(0);
    expect((await run()).code).toBe(0);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_first": "applied" });
  });
});

describe("order", () => {
  test("a pending version below the highest applied is refused, naming both; --allow-out-of-order applies it", async () => {
    const { db, dir, run } = await appliedSetup({ "005_fifth.sql": "create table fifth (id int);\n" });
    await writeFile(join(dir, "003_late.sql"), "create table late (id int);\n");
    const before = await catalogPicture(db.sql);
    const refused = await run();
    expect(refused.code).toBe(4);
    const { message } = failure(refused);
    expect(message).toContain("003_late.sql");
    expect(message).toContain("005_fifth.sql");
    expect(message).toContain("--allow-out-of-order");
    expect(await catalogPicture(db.sql)).toBe(before);

    const allowed = await run(["--allow-out-of-order"]);
    expect(allowed.code).toBe(0);
    expect(allowed.events.find((e) => e.event === "migration_out_of_order")).toMatchObject({ migration: "003_late", reason: "allowed by flag" });
    expect(await tableExists(db.sql, "late")).toBe(true);
  });
});

describe("a failing statement", () => {
  test("after earlier files committed, the last line names what is live, where the run stopped and what it never reached", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_base.sql": "create table base (id int);\n" });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await writeFile(join(dir, "002_first.sql"), "create table first (id int);\n");
    await writeFile(join(dir, "003_second.sql"), "create table second (id int);\n");
    await writeFile(join(dir, "004_broken.sql"), "insert into missing_table values (1);\n");
    await writeFile(join(dir, "005_after.sql"), "create table after_it (id int);\n");
    await writeFile(join(dir, "006_later.sql"), "create table later (id int);\n");
    for (const format of ["json", "text"] as const) {
      const result = await runMain([], { url: db.url, migrationsDir: dir, env: { LOG_FORMAT: format } });
      expect(result.code).toBe(1);
      const line = format === "json" ? failure(result).message : result.stderr.trimEnd().split("\n").slice(-1)[0];
      expect(line).toEndWith("in this run: " + (format === "json" ? "applied 002_first, 003_second (live now, under the release still serving)" : "nothing applied") + "; stopped at 004_broken; not attempted: 005_after, 006_later");
      if (format === "json") {
        expect(failure(result)).toMatchObject({
          applied: ["002_first", "003_second"],
          applied_count: 2,
          stopped_at: "004_broken",
          not_attempted: ["005_after", "006_later"],
          not_attempted_count: 2,
        });
      }
    }
    expect(await trackedStatuses(db.sql)).toEqual({ "001_base": "applied", "002_first": "applied", "003_second": "applied" });
  });

  test("a run refused before applying anything says that nothing of it is live and lists the files it held back", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_base.sql": "create table base (id int);\n" });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await db.sql`alter table base add column by_hand text`;
    await writeFile(join(dir, "002_next.sql"), "create table next_one (id int);\n");
    const result = await runMain(["--strict-drift"], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(4);
    expect(failure(result)).toMatchObject({ applied: [], stopped_at: null, not_attempted: ["002_next"] });
    expect(failure(result).message).toEndWith("\n    in this run: nothing applied; not attempted: 002_next");
  });

  test("exits 1 naming file, line, column, SQLSTATE, detail and hint, with nothing of it applied", async () => {
    const { db, dir, run } = await appliedSetup();
    await writeFile(
      join(dir, "003_bad.sql"),
      "-- adds a duplicate\ncreate table bad (id int primary key);\ninsert into bad values (1);\ninsert into\n  bad values (1);\n",
    );
    await writeFile(join(dir, "004_after.sql"), "create table after_bad (id int);\n");
    const result = await run();
    expect(result.code).toBe(1);
    const event = failure(result);
    expect(event).toMatchObject({ file: "003_bad.sql", line: 4, code: "23505", detail: "Key (id)=(1) already exists." });
    expect(event.message).toContain("003_bad.sql:4:1");
    expect(event.message).toContain("insert into …");
    expect(event.message).toContain("rolled back");
    expect(await tableExists(db.sql, "bad")).toBe(false);
    expect(await tableExists(db.sql, "after_bad")).toBe(false);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_first": "applied", "002_second": "applied" });
  });

  test("a server position points at the column inside the file, hint included", async () => {
    const result = await runMain([], {
      url: (await server.fresh()).url,
      migrationsDir: await migrationsFolder({ "001_x.sql": "-- é ü\r\ncreate table x (id int);\r\nselect idd from x;\r\n" }),
    });
    expect(result.code).toBe(1);
    const event = failure(result);
    expect(event).toMatchObject({ file: "001_x.sql", line: 3, column: 8, code: "42703" });
    expect(String(event.hint)).toContain("id");
  });
});

describe("no-transaction migrations", () => {
  const concurrently = "-- migrate:no-transaction\ncreate index concurrently second_id on second (id);\n";

  test("run outside a transaction, so CREATE INDEX CONCURRENTLY works", async () => {
    const { db, run } = await appliedSetup({ "003_index.sql": concurrently });
    expect(await trackedStatuses(db.sql)).toMatchObject({ "003_index": "applied" });
    const [row] = await db.sql`select transactional from platform.schema_migrations where version = 3`;
    expect(row!.transactional).toBe(false);
    expect((await run()).code).toBe(0);
  });

  test("a failure part-way is recorded, later runs refuse, and --rolled-back retries it", async () => {
    const { db, dir, run } = await appliedSetup();
    await writeFile(join(dir, "003_partial.sql"), "-- migrate:no-transaction\ncreate table partial_a (id int);\ncreate table partial_b (id int);\nselect missing_column from partial_a;\n");
    const failed = await run();
    expect(failed.code).toBe(1);
    expect(failure(failed).message).toContain("003_partial.sql:4");
    expect(failure(failed).message).toContain("statements 1-2 of 3 ran before it");
    expect(await tableExists(db.sql, "partial_a")).toBe(true);
    expect(await trackedStatuses(db.sql)).toMatchObject({ "003_partial": "failed" });

    const refused = await run();
    expect(refused.code).toBe(4);
    expect(failure(refused).message).toContain("resolve 3 --rolled-back");
    expect(failure(refused).message).toContain("resolve 3 --applied");

    await db.sql`drop table partial_a, partial_b`;
    await writeFile(join(dir, "003_partial.sql"), "-- migrate:no-transaction\ncreate table partial_a (id int);\ncreate table partial_b (id int);\nselect id from partial_a;\n");
    const resolved = await run(["resolve", "3", "--rolled-back"]);
    expect(resolved.code).toBe(0);
    expect(resolved.events.find((e) => e.event === "resolved")).toMatchObject({ version: 3, action: "rolled-back" });
    expect((await run()).code).toBe(0);
    expect(await trackedStatuses(db.sql)).toMatchObject({ "003_partial": "applied" });
  });

  test("--rolled-back lets a failed migration below higher applied versions retry without --allow-out-of-order", async () => {
    const { db, dir, run } = await appliedSetup({ "005_fifth.sql": "create table fifth (id int);\n" });
    await writeFile(join(dir, "003_late.sql"), "-- migrate:no-transaction\ncreate table late_a (id int);\nselect nope from late_a;\n");
    expect((await run(["--allow-out-of-order"])).code).toBe(1);
    await db.sql`drop table late_a`;
    await writeFile(join(dir, "003_late.sql"), "-- migrate:no-transaction\ncreate table late_a (id int);\nselect id from late_a;\n");
    expect((await run(["resolve", "3", "--rolled-back"])).code).toBe(0);
    const retried = await run();
    expect(retried.code).toBe(0);
    expect(await trackedStatuses(db.sql)).toMatchObject({ "003_late": "applied" });
  });

  test("--applied records a migration that was finished by hand", async () => {
    const { db, dir, run } = await appliedSetup();
    await writeFile(join(dir, "003_partial.sql"), "-- migrate:no-transaction\ncreate table hand_a (id int);\nselect nope from hand_a;\n");
    expect((await run()).code).toBe(1);
    expect((await run(["resolve", "3", "--applied"])).code).toBe(0);
    expect(await trackedStatuses(db.sql)).toMatchObject({ "003_partial": "applied" });
    expect((await run()).code).toBe(0);
  });

  test("resolve refuses an action that does not fit the migration's state", async () => {
    const { db, run } = await appliedSetup();
    const before = await catalogPicture(db.sql);
    const result = await run(["resolve", "1", "--rolled-back"]);
    expect(result.code).toBe(4);
    expect(failure(result).message).toContain("recorded as applied");
    expect(await catalogPicture(db.sql)).toBe(before);
  });
});
