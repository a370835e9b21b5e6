/** Schema drift: a change made behind the job's back is reported by the next up, or refused with --strict-drift. */
import { describe, expect, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { tableExists, trackedStatuses } from "./support/catalog.ts";

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
