/** Schema drift: a change made behind the job's back is reported by the next up, or refused with --strict-drift. */
import { describe, expect, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { tableExists, trackedStatuses } from "./support/catalog.ts";
import { catalogSignal } from "../src/database/schema-snapshot/catalog-signal.ts";

const server = useTestServer();

const ITEMS = "create table items (id bigint primary key, name text);\n";
const NEXT = "create table next_table (id bigint primary key);\n";

async function migratedThenChangedByHand() {
  const db = await server.fresh();
  const dir = await migrationsFolder({ "001_items.sql": ITEMS });
  expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
  // Behind the job's back, as someone with psql would.
  await db.sql`alter table items add column nickname text`;
  await writeFile(join(dir, "002_next.sql"), NEXT);
  return { db, dir };
}

describe("schema drift", () => {
  test("the next up warns, naming the column, and still applies", async () => {
    const { db, dir } = await migratedThenChangedByHand();
    const result = await runMain([], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(0);
    const warning = result.events.find((e) => e.event === "schema_drift");
    expect(warning).toMatchObject({ level: "warn", differences: ["column public.items.nickname added (text, nullable)"] });
    expect(await tableExists(db.sql, "next_table")).toBe(true);

    // That run recorded the schema as it is now: the change is reported once, not on every deploy.
    const again = await runMain([], { url: db.url, migrationsDir: dir });
    expect(again.events.filter((e) => e.event === "schema_drift")).toEqual([]);
  });

  test("with --strict-drift (or MIGRATE_STRICT_DRIFT=1) it exits 4 and applies nothing", async () => {
    const { db, dir } = await migratedThenChangedByHand();
    for (const run of [() => runMain(["--strict-drift"], { url: db.url, migrationsDir: dir }), () => runMain([], { url: db.url, migrationsDir: dir, env: { MIGRATE_STRICT_DRIFT: "1" } })]) {
      const result = await run();
      expect(result.code).toBe(4);
      expect(failure(result).message).toContain("column public.items.nickname added");
      expect(failure(result).message).toContain("without --strict-drift");
      expect(await tableExists(db.sql, "next_table")).toBe(false);
      expect(await trackedStatuses(db.sql)).toEqual({ "001_items": "applied" });
    }
  });

  test("status shows the drift, in text and JSON", async () => {
    const { db, dir } = await migratedThenChangedByHand();
    const text = await runMain(["status"], { url: db.url, migrationsDir: dir, env: { LOG_FORMAT: "text" } });
    expect(text.stdout).toContain("schema changed outside migrations since");
    expect(text.stdout).toContain("  column public.items.nickname added (text, nullable)");
    const json = await runMain(["status", "--json"], { url: db.url, migrationsDir: dir });
    const document = JSON.parse(json.stdout.split("\n")[0]!) as { drift: { differences: string[] } | null };
    expect(document.drift?.differences).toEqual(["column public.items.nickname added (text, nullable)"]);
  });

  test("an unchanged schema is known by its fingerprint from the first run on: later runs store no second copy of the snapshot", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_items.sql": ITEMS });
    for (let run = 0; run < 3; run++) expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    const rows = await db.sql`select schema_hash, schema_fingerprint, schema_snapshot is not null as stored from platform.schema_migrations_runs order by id`;
    const [first] = rows;
    expect(rows.map((row) => ({ ...row }))).toEqual([
      { schema_hash: first!.schema_hash, schema_fingerprint: first!.schema_fingerprint, stored: true },
      { schema_hash: first!.schema_hash, schema_fingerprint: first!.schema_fingerprint, stored: false },
      { schema_hash: first!.schema_hash, schema_fingerprint: first!.schema_fingerprint, stored: false },
    ]);
  });

  test("migrations themselves, and down, never count as drift", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_items.sql": ITEMS, "001_rollback.sql": "drop table items;\n", "002_next.sql": NEXT, "002_rollback.sql": "drop table next_table;\n" });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    expect((await runMain(["down", "--to", "1", "--yes"], { url: db.url, migrationsDir: dir })).code).toBe(0);
    const up = await runMain([], { url: db.url, migrationsDir: dir });
    expect(up.code).toBe(0);
    expect(up.events.filter((e) => e.event === "schema_drift")).toEqual([]);
  });
});

describe("the catalog signal that spares a deploy the whole snapshot", () => {
  const SCHEMA = {
    "001_app.sql": [
      "create type mood as enum ('happy', 'sad');",
      "create table items (id bigint primary key, name text, feeling mood);",
      "create sequence item_numbers;",
      "create view item_names as select name from items;",
      "create function item_count() returns bigint language sql as $$ select count(*) from items $$;",
      "create function touch() returns trigger language plpgsql as $$ begin return new; end $$;",
      "create trigger items_touch before update on items for each row execute function touch();",
      "",
    ].join("\n"),
  };

  /** Each change touches as few catalogs as such a change can; every one is what the snapshot sees. */
  const CHANGES: readonly { readonly sql: (role: string) => string; readonly difference: string }[] = [
    { sql: () => "alter table items rename column name to title", difference: "column public.items.title added" },
    { sql: () => "alter table items alter column feeling set default 'happy'", difference: "column public.items.feeling changed" },
    { sql: () => "alter table items alter column id set data type bigint, alter column feeling set not null", difference: "column public.items.feeling changed" },
    { sql: () => "alter sequence item_numbers owned by items.id", difference: "sequence public.item_numbers changed" },
    { sql: (role) => `grant select (id) on items to ${role}`, difference: "grant on column public.items.id" },
    { sql: (role) => `grant select on items to ${role}`, difference: "grant on table public.items" },
    { sql: () => "alter type mood add value 'meh'", difference: "type public.mood changed" },
    { sql: () => "alter table items disable trigger items_touch", difference: "trigger public.items.items_touch changed" },
    { sql: () => "create or replace view item_names as select title || '!' as name from items", difference: "view public.item_names changed" },
    { sql: () => "create or replace function item_count() returns bigint language sql as $$ select count(*) + 0 from items $$", difference: "function public.item_count() changed" },
    { sql: () => "create index items_name on items (title)", difference: "index public.items_name added" },
    { sql: (role) => `alter role ${role} rename to ${role}_renamed`, difference: `grant on table public.items to ${"ROLE"}_renamed added` },
  ];

  test("every change the snapshot sees is drift, even one that touches a single catalog", async () => {
    const db = await server.fresh();
    const role = `drift_${db.name}`;
    await db.sql.unsafe(`create role ${role}`);
    try {
      const dir = await migrationsFolder(SCHEMA);
      expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
      for (const change of CHANGES) {
        await db.sql.unsafe(change.sql(role));
        const result = await runMain([], { url: db.url, migrationsDir: dir });
        expect(result.code).toBe(0);
        const warning = result.events.find((e) => e.event === "schema_drift") as { differences?: string[] } | undefined;
        const expected = change.difference.replace("ROLE", role);
        expect({ change: change.sql(role), reported: warning?.differences?.some((line) => line.startsWith(expected)) ?? warning?.differences }).toEqual({ change: change.sql(role), reported: true });
      }
    } finally {
      // Roles belong to the whole server, which the other tests share.
      for (const { rolname } of await db.sql<{ rolname: string }[]>`select rolname from pg_roles where rolname in (${role}, ${`${role}_renamed`})`) {
        await db.sql.unsafe(`drop owned by ${rolname}; drop role ${rolname}`);
      }
    }
  });

  test("what writes no catalog row version leaves it as it was: rows, VACUUM, ANALYZE, sequences", async () => {
    const db = await server.fresh();
    expect((await runMain([], { url: db.url, migrationsDir: await migrationsFolder(SCHEMA) })).code).toBe(0);
    const before = await catalogSignal(db.sql);
    await db.sql`insert into items (id, name) select n, 'item ' || n from generate_series(1, 500) as n`;
    await db.sql`update items set name = name || '.' where id % 2 = 0`;
    await db.sql`delete from items where id > 400`;
    await db.sql`select nextval('item_numbers')`;
    await db.sql`analyze items`;
    await db.sql`vacuum items`;
    await db.sql`vacuum analyze`;
    expect(await catalogSignal(db.sql)).toBe(before);
    await db.sql`alter table items add column extra text`;
    expect(await catalogSignal(db.sql)).not.toBe(before);
  });

  test("a catalog write that changes nothing the snapshot sees is not drift, and the run records the new signal", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder(SCHEMA);
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    const recorded = async () => (await db.sql<{ signal: string }[]>`select schema_fingerprint as signal from platform.schema_migrations_runs order by id desc limit 1`)[0]!.signal;
    expect(await recorded()).toBe(await catalogSignal(db.sql));
    await db.sql`alter table items alter column name set statistics 500`;
    const changed = await catalogSignal(db.sql);
    expect(changed).not.toBe(await recorded());
    const result = await runMain([], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(0);
    expect(result.events.filter((e) => e.event === "schema_drift")).toEqual([]);
    expect(await recorded()).toBe(changed);
  });
});
