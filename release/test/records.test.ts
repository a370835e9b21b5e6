/**
 * Records that cannot be lost or lie: the run history is the evidence a lost tracking row or table
 * is found by, and a run never re-applies what that evidence says was applied; a database built by
 * something else is refused; what the job itself committed is never reported as drift; and every
 * run that reached the database is in the history.
 */
import { describe, expect, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { tableExists, trackedStatuses } from "./support/catalog.ts";
import { watchBothStreams } from "./support/watch-output.ts";
import postgres from "postgres";

const server = useTestServer();

/** A data migration that must never run twice: it multiplies every balance by 100. */
const LEDGER = {
  "001_accounts.sql": "create table accounts (id bigint primary key, balance_cents bigint not null);\ninsert into accounts values (1, 7), (2, 11);\n",
  "002_to_cents.sql": "update accounts set balance_cents = balance_cents * 100;\n",
  "003_audit.sql": "create table audit (id bigint primary key);\n",
};

async function ledger(db: TestDatabase) {
  const dir = await migrationsFolder(LEDGER);
  const run = (args: string[] = [], env: Record<string, string> = {}) => runMain(args, { url: db.url, migrationsDir: dir, env });
  expect((await run()).code).toBe(0);
  return { dir, run };
}

async function balances(db: TestDatabase): Promise<number[]> {
  return (await db.sql<{ balance_cents: string }[]>`select balance_cents from accounts order by id`).map((row) => Number(row.balance_cents));
}

/** The fix line's command: everything after `bun release/migrate.ts`. */
function fixCommand(result: RunResult, index = 0): string[] {
  const fixes = [...failure(result).message.matchAll(/fix: .*?bun release\/migrate\.ts ((?:[\w-]+ ?)+)/g)];
  const fix = fixes[index];
  if (!fix) throw new Error(`no fix command in: ${failure(result).message}`);
  return fix[1]!.trim().split(" ");
}

const APPLIED_ONCE = [700, 1100];

describe("a tracking table that lost rows", () => {
  test("the row of the highest version deleted: refused, not re-applied, and resolve --applied writes it back", async () => {
    const db = await server.fresh();
    const { run } = await ledger(db);
    await db.sql`delete from platform.schema_migrations where version = 3`;
    const refused = await run();
    expect(refused.code).toBe(4);
    expect(failure(refused)).toMatchObject({ checks: ["record_lost"], files: ["003_audit.sql"] });
    expect(failure(refused).message).toContain("version 3 has no row in the tracking table, but run #");
    expect(fixCommand(refused)).toEqual(["resolve", "3", "--applied"]);
    expect((await run(fixCommand(refused))).code).toBe(0);
    const next = await run();
    expect(next.code).toBe(0);
    expect(next.events.filter((e) => e.event === "migration_started")).toEqual([]);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_accounts": "applied", "002_to_cents": "applied", "003_audit": "applied" });
  });

  test("in a Railway deploy's log the fix reads as it runs from a laptop; the history keeps the same words", async () => {
    const db = await server.fresh();
    const { dir, run } = await ledger(db);
    await db.sql`delete from platform.schema_migrations where version = 3`;
    const deployed = await run([], { RAILWAY_DEPLOYMENT_ID: "deploy-1" });
    expect(deployed.code).toBe(4);
    expect(failure(deployed).message).toContain("fix: if the database still has what it did, record it without running it: railway run bun release/migrate.ts resolve 3 --applied --public-url");
    const [recorded] = await db.sql<{ error_message: string }[]>`select error_message from platform.schema_migrations_runs where kind = 'run' order by id desc limit 1`;
    expect(recorded!.error_message).toContain("railway run bun release/migrate.ts resolve 3 --applied --public-url");
    const local = await run();
    expect(failure(local).message).toContain("fix: if the database still has what it did, record it without running it: bun release/migrate.ts resolve 3 --applied");
    expect(failure(local).message).not.toContain("railway run");
    // Another fix, of another check: an applied file that changed.
    expect((await run(["resolve", "3", "--applied"])).code).toBe(0);
    await writeFile(join(dir, "002_to_cents.sql"), `${LEDGER["002_to_cents.sql"]}-- a comment\n`);
    const changed = await run([], { RAILWAY_DEPLOYMENT_ID: "deploy-2" });
    expect(changed.code).toBe(4);
    expect(failure(changed).message).toContain("record it with: railway run bun release/migrate.ts resolve 2 --accept-checksum --public-url");
  });

  test("a middle row deleted: refused as a lost row, not as out of order, and the data migration never runs twice", async () => {
    const db = await server.fresh();
    const { run } = await ledger(db);
    await db.sql`delete from platform.schema_migrations where version = 2`;
    const refused = await run(["up", "--allow-out-of-order"]);
    expect(refused.code).toBe(4);
    expect(failure(refused).message).not.toContain("out of order");
    expect(fixCommand(refused)).toEqual(["resolve", "2", "--applied"]);
    const status = await run(["status", "--json"]);
    expect((JSON.parse(status.stdout) as { migrations: { version: number; state: string }[] }).migrations.find((m) => m.version === 2)?.state).toBe("record_lost");
    expect((await run(fixCommand(refused))).code).toBe(0);
    expect((await run()).code).toBe(0);
    expect(await balances(db)).toEqual(APPLIED_ONCE);
  });

  test("every row deleted: each version is refused with its own repair", async () => {
    const db = await server.fresh();
    const { run } = await ledger(db);
    await db.sql`truncate platform.schema_migrations`;
    const refused = await run();
    expect(refused.code).toBe(4);
    expect([0, 1, 2].map((index) => fixCommand(refused, index))).toEqual([
      ["resolve", "1", "--applied"],
      ["resolve", "2", "--applied"],
      ["resolve", "3", "--applied"],
    ]);
    expect(await balances(db)).toEqual(APPLIED_ONCE);
  });
});

describe("a tracking table that is gone", () => {
  test("dropped: refused with one baseline that records every version again, and nothing runs twice", async () => {
    const db = await server.fresh();
    const { run } = await ledger(db);
    await db.sql`drop table platform.schema_migrations`;
    const refused = await run();
    expect(refused.code).toBe(4);
    expect(failure(refused).message).toContain("the tracking table is missing, but run #");
    expect(failure(refused).message).toContain("recorded versions 1, 2, 3 as applied");
    expect(fixCommand(refused)).toEqual(["baseline", "--to", "3"]);
    expect(await balances(db)).toEqual(APPLIED_ONCE);

    expect((await run([...fixCommand(refused), "--yes"])).code).toBe(0);
    const next = await run();
    expect(next.code).toBe(0);
    expect(next.events.filter((e) => e.event === "migration_started")).toEqual([]);
    expect(await balances(db)).toEqual(APPLIED_ONCE);
  });
});

describe("a database the job did not build", () => {
  test("objects but no tracking table and no history: refused with baseline; baseline --to 0 runs every migration on top", async () => {
    const db = await server.fresh();
    await db.sql`create table legacy_customers (id bigint primary key)`;
    const dir = await migrationsFolder({ "001_first.sql": "create table first (id bigint primary key);\n" });
    const run = (args: string[] = []) => runMain(args, { url: db.url, migrationsDir: dir });
    const refused = await run();
    expect(refused.code).toBe(4);
    expect(failure(refused)).toMatchObject({ checks: ["unmanaged"] });
    expect(failure(refused).message).toContain("already holds 1 relation (tables, views, sequences: public.legacy_customers)");
    expect(failure(refused).message).toContain("baseline --to 1");
    expect(await tableExists(db.sql, "first")).toBe(false);

    expect((await run(["baseline", "--to", "0", "--yes"])).code).toBe(0);
    expect((await run()).code).toBe(0);
    expect(await tableExists(db.sql, "first")).toBe(true);
  });

  test("an empty database, or one holding only extensions' objects, is not refused", async () => {
    const db = await server.fresh();
    await db.sql`create extension if not exists pg_trgm`;
    const result = await runMain([], { url: db.url, migrationsDir: await migrationsFolder({ "001_first.sql": "create table first (id bigint primary key);\n" }) });
    expect(result.code).toBe(0);
  });
});

describe("what the job committed is never drift", () => {
  test("after an up that failed part-way, the next run finds no drift, even with strict drift", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_first.sql": "create table first (id bigint primary key);\n" });
    const run = (env: Record<string, string> = {}) => runMain([], { url: db.url, migrationsDir: dir, env });
    expect((await run()).code).toBe(0);
    await writeFile(join(dir, "002_second.sql"), "create table second (id bigint primary key);\n");
    await writeFile(join(dir, "003_broken.sql"), "create table third (id bigint primary key);\ninsert into no_such_table values (1);\n");
    expect((await run()).code).toBe(1);
    await writeFile(join(dir, "003_broken.sql"), "create table third (id bigint primary key);\n");
    const strict = await run({ MIGRATE_STRICT_DRIFT: "1" });
    expect(strict.code).toBe(0);
    expect(strict.events.filter((e) => e.event === "schema_drift")).toEqual([]);
  });

  test("after a down that failed part-way, the next up finds no drift, even with strict drift", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({
      "001_first.sql": "create table first (id bigint primary key);\n",
      "001_rollback.sql": "drop table first;\n",
      "002_second.sql": "create table second (id bigint primary key);\n",
      "002_rollback.sql": "drop table no_such_table;\n",
      "003_third.sql": "create table third (id bigint primary key);\n",
      "003_rollback.sql": "drop table third;\n",
    });
    const run = (args: string[] = [], env: Record<string, string> = {}) => runMain(args, { url: db.url, migrationsDir: dir, env });
    expect((await run()).code).toBe(0);
    const down = await run(["down", "--to", "0", "--yes"]);
    expect(down.code).toBe(1);
    expect(await tableExists(db.sql, "third")).toBe(false);
    const strict = await run([], { MIGRATE_STRICT_DRIFT: "1" });
    expect(strict.code).toBe(0);
    expect(strict.events.filter((e) => e.event === "schema_drift")).toEqual([]);
    expect(await tableExists(db.sql, "third")).toBe(true);
  });

  test("a change made outside migrations is still drift after a refused run", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_first.sql": "create table first (id bigint primary key);\n" });
    const run = (env: Record<string, string> = {}) => runMain([], { url: db.url, migrationsDir: dir, env });
    expect((await run()).code).toBe(0);
    await db.sql`alter table first add column nickname text`;
    expect((await run({ MIGRATE_STRICT_DRIFT: "1" })).code).toBe(4);
    const again = await run({ MIGRATE_STRICT_DRIFT: "1" });
    expect(again.code).toBe(4);
    expect(failure(again).message).toContain("nickname");
  });
});

describe("every run that reached the database is in the history", () => {
  test("a first deploy refused before anything ran is recorded, and so is a first deploy whose migration failed", async () => {
    const refusedDb = await server.fresh();
    const syntax = await runMain([], { url: refusedDb.url, migrationsDir: await migrationsFolder({ "001_bad.sql": "create tabel nope (id int);\n" }) });
    expect(syntax.code).toBe(4);
    expect([...(await refusedDb.sql`select command, outcome, error_code from platform.schema_migrations_runs where kind = 'run'`)]).toEqual([
      { command: "up", outcome: "refused", error_code: null },
    ]);
    expect(await tableExists(refusedDb.sql, "platform.schema_migrations")).toBe(false);

    const failedDb = await server.fresh();
    const failed = await runMain([], { url: failedDb.url, migrationsDir: await migrationsFolder({ "001_fails.sql": "insert into no_such_table values (1);\n" }) });
    expect(failed.code).toBe(1);
    expect([...(await failedDb.sql`select command, outcome, error_code from platform.schema_migrations_runs where kind = 'run'`)]).toEqual([
      { command: "up", outcome: "failed", error_code: "42P01" },
    ]);
  });

  test("a history table an older release made, without applied_versions, is brought up to date and the run recorded in it", async () => {
    const db = await server.fresh();
    const { run } = await ledger(db);
    await db.sql`alter table platform.schema_migrations_runs drop column applied_versions`;
    const upgraded = await run();
    expect(upgraded.code).toBe(0);
    const runs = await db.sql<{ outcome: string; applied_versions: number[] | null }[]>`
      select outcome, applied_versions from platform.schema_migrations_runs where kind = 'run' order by id`;
    expect(runs.map((row) => row.outcome)).toEqual(["succeeded", "succeeded"]);
    // The first run's evidence went with the dropped column; the run after the upgrade records its own.
    expect(runs.map((row) => row.applied_versions)).toEqual([null, [1, 2, 3]]);
  });
});

describe("no run stays running after its process ends", () => {
  async function holdingTheLock(db: TestDatabase) {
    const holder = postgres(db.url, { max: 1, onnotice: () => undefined });
    await holder`select pg_advisory_lock(6004517954967784775::bigint)`;
    return holder;
  }

  async function runOutcomes(db: TestDatabase): Promise<string[]> {
    return (await db.sql<{ outcome: string }[]>`select outcome from platform.schema_migrations_runs where kind = 'run' order by id`).map((row) => row.outcome);
  }

  test("the run budget running out while waiting for the lock, and SIGINT while waiting: each run is recorded as cancelled", async () => {
    const db = await server.fresh();
    const { dir } = await ledger(db);
    const holder = await holdingTheLock(db);
    try {
      const budget = await runMain([], { url: db.url, migrationsDir: dir, env: { MIGRATE_RUN_TIMEOUT: "1s", MIGRATE_LOCK_WAIT: "1min" } });
      expect(budget.code).toBe(1);
      expect(failure(budget)).toMatchObject({ error: "cancelled", budget_ms: 1000 });

      const interrupted = watchBothStreams([], { url: db.url, migrationsDir: dir });
      await interrupted.until("stdout", (output) => output.includes('"event":"lock_waiting"'));
      interrupted.child.kill("SIGINT");
      expect((await interrupted.result()).code).toBe(130);
    } finally {
      await holder.end();
    }
    expect(await runOutcomes(db)).toEqual(["succeeded", "cancelled", "cancelled"]);
  });
});
