/**
 * Faults are part of the product: SIGKILL at random moments, concurrent runners, a lock held by
 * someone else, a terminated backend, and a lock connection that is lost mid-run.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, runMigrate } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { watchBothStreams } from "./support/watch-output.ts";
import { tableExists, trackedStatuses, lastRun, migrationLockHolders } from "./support/catalog.ts";
import { eventually } from "./support/eventually.ts";

const LOCK_KEY = "6004517954967784775";

const server = useTestServer();

/** `count` migrations; each creates its own table, fills it, and takes a few milliseconds. */
function generatedMigrations(count: number): Record<string, string> {
  const files: Record<string, string> = {
    "001_create_ledger.sql": "create table ledger (version int primary key, applied_by_pid int default pg_backend_pid());\n",
  };
  for (let version = 2; version <= count; version++) {
    const id = String(version).padStart(3, "0");
    files[`${id}_generated_${id}.sql`] =
      `create table gen_${id} (id int primary key, note text);\n` +
      `insert into gen_${id} select g, md5(g::text) from generate_series(1, 2000) g;\n` +
      `insert into ledger (version) values (${version});\n` +
      `select pg_sleep(0.005);\n`;
  }
  return files;
}

/** The generated tables that exist, read in one query: the check runs after each of 20 kills. */
async function generatedTables(db: TestDatabase): Promise<Set<string>> {
  const rows = await db.sql<{ name: string }[]>`select relname as name from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r' and relname like 'gen\\_%'`;
  return new Set(rows.map((row) => row.name));
}

/** Every migration's tracking row exists exactly when its table does. */
async function expectAtomic(db: TestDatabase, count: number): Promise<number> {
  const statuses = (await tableExists(db.sql, "platform.schema_migrations")) ? await trackedStatuses(db.sql) : {};
  const tables = await generatedTables(db);
  let applied = 0;
  for (let version = 2; version <= count; version++) {
    const id = String(version).padStart(3, "0");
    const recorded = statuses[`${id}_generated_${id}`] === "applied";
    expect({ version, table: tables.has(`gen_${id}`) }).toEqual({ version, table: recorded });
    if (recorded) applied++;
  }
  return applied;
}

describe("crash safety", () => {
  test("SIGKILL at random moments, 20 times, never separates a migration from its record", async () => {
    const count = 60;
    const db = await server.fresh();
    const dir = await migrationsFolder(generatedMigrations(count));
    const progress: number[] = [];
    for (let kill = 0; kill < 20; kill++) {
      const run = watchBothStreams([], { url: db.url, migrationsDir: dir });
      // Kill after a random number of output lines, then a random extra delay of 0-15 ms.
      const linesBeforeKill = Math.floor(Math.random() * 12);
      await run.until("stdout", (stdout) => stdout.split("\n").length - 1 >= linesBeforeKill);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 15));
      run.child.kill("SIGKILL");
      await run.child.exited;
      progress.push(await expectAtomic(db, count));
    }
    const rerun = await runMain([], { url: db.url, migrationsDir: dir });
    expect(rerun.code).toBe(0);
    expect(await expectAtomic(db, count)).toBe(count - 1);
    const [ledger] = await db.sql`select count(*)::int as rows, count(distinct version)::int as versions from ledger`;
    expect(ledger).toEqual({ rows: count - 1, versions: count - 1 });
    // The kills landed part-way through the run, not only before or after it.
    expect(progress.some((applied) => applied > 0 && applied < count - 1)).toBe(true);
  });
});

describe("concurrency", () => {
  test("8 runs started together apply each migration exactly once, and all exit 0", async () => {
    const count = 30;
    const db = await server.fresh();
    const dir = await migrationsFolder(generatedMigrations(count));
    const results = await Promise.all(Array.from({ length: 8 }, () => runMigrate([], { url: db.url, migrationsDir: dir })));
    expect(results.map((r) => r.code)).toEqual(Array(8).fill(0));
    const [ledger] = await db.sql`select count(*)::int as rows, count(distinct version)::int as versions from ledger`;
    expect(ledger).toEqual({ rows: count - 1, versions: count - 1 });
    const appliedPerRun = results.map((r) => r.events.filter((e) => e.event === "migration_applied").length);
    expect(appliedPerRun.reduce((a, b) => a + b, 0)).toBe(count);
    expect(Object.values(await trackedStatuses(db.sql))).toEqual(Array(count).fill("applied"));
  });
});

describe("the migration lock", () => {
  async function holdLock(db: TestDatabase) {
    const holder = postgres(db.url, { max: 1, connection: { application_name: "manual-holder" }, onnotice: () => undefined });
    const [{ pid }] = (await holder`select pg_backend_pid() as pid, pg_advisory_lock(${LOCK_KEY}::bigint)`) as unknown as [{ pid: number }];
    return { holder, pid };
  }

  test("held past the wait limit: exit 3, naming the holder, nothing applied", async () => {
    const db = await server.fresh();
    const { holder, pid } = await holdLock(db);
    const result = await runMain([], {
      url: db.url,
      migrationsDir: await migrationsFolder({ "001_a.sql": "create table a (id int);\n" }),
      env: { MIGRATE_LOCK_WAIT: "1500ms" },
    });
    await holder.end();
    expect(result.code).toBe(3);
    const { message } = failure(result);
    expect(message).toContain(`pid ${pid}`);
    expect(message).toContain("manual-holder");
    expect(message).toContain("MIGRATE_LOCK_WAIT");
    expect(result.events.find((e) => e.event === "lock_waiting")).toMatchObject({ holder_pid: pid, holder_application: "manual-holder" });
    expect(await tableExists(db.sql, "a")).toBe(false);
  });

  test("a run that waited takes the lock as soon as it is released, then applies", async () => {
    const db = await server.fresh();
    const { holder } = await holdLock(db);
    const run = watchBothStreams([], { url: db.url, migrationsDir: await migrationsFolder({ "001_a.sql": "create table a (id int);\n" }) });
    await run.until("stdout", (stdout) => stdout.includes('"lock_waiting"'));
    await holder.end();
    const result = await run.result();
    expect(result.code).toBe(0);
    expect(result.events.find((e) => e.event === "lock_acquired")?.waited_ms).toBeGreaterThan(0);
    expect(await tableExists(db.sql, "a")).toBe(true);
  });

  test("a statement timeout shorter than a wait slice never ends the wait for the lock", async () => {
    const db = await server.fresh();
    const { holder } = await holdLock(db);
    const run = watchBothStreams([], { url: db.url, migrationsDir: await migrationsFolder({ "001_a.sql": "create table a (id int);\n" }), env: { MIGRATE_STATEMENT_TIMEOUT: "100ms" } });
    // Two waits in the lock queue, one after the other: the run lived through a whole slice (500 ms), five statement timeouts long.
    const waits = new Set<string>();
    await eventually("the run to wait in the lock queue twice", async () => {
      const rows = await db.sql<{ since: string }[]>`
        select waitstart::text as since from pg_locks where locktype = 'advisory' and objid = 1229933895 and not granted and waitstart is not null`;
      for (const row of rows) waits.add(row.since);
      return waits.size >= 2 ? true : undefined;
    });
    await holder.end();
    const result = await run.result();
    expect(result.code).toBe(0);
    expect(await tableExists(db.sql, "a")).toBe(true);
  });
});

describe("lost connections", () => {
  /** A migration that waits on a row lock the test holds, so the test controls when it may finish. */
  const blocked = {
    "001_gate.sql": "create table gate (id int primary key);\ninsert into gate values (1);\n",
    "002_blocked.sql": "create table blocked_half (id int);\nupdate gate set id = id where id = 1;\ncreate table blocked_rest (id int);\n",
  };

  async function startBlocked(db: TestDatabase) {
    const dir = await migrationsFolder({ "001_gate.sql": blocked["001_gate.sql"] });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await Bun.write(`${dir}/002_blocked.sql`, blocked["002_blocked.sql"]);
    const gate = postgres(db.url, { max: 1, onnotice: () => undefined });
    await gate`begin`;
    await gate`select * from gate for update`;
    const run = watchBothStreams([], { url: db.url, migrationsDir: dir });
    const workPid = await eventually("the job's migration session to wait behind the test's row lock", async () => {
      const [row] = await db.sql<{ pid: number }[]>`select pid from pg_stat_activity where application_name = 'studio-migrate' and wait_event_type = 'Lock'`;
      return row?.pid;
    });
    const [lockPid] = await migrationLockHolders(db.sql);
    return { dir, gate, workPid, lockPid: lockPid!, run };
  }

  test("terminating the migration's backend: non-zero exit, nothing partial, a rerun succeeds", async () => {
    const db = await server.fresh();
    const { dir, gate, workPid, run } = await startBlocked(db);
    await db.sql`select pg_terminate_backend(${workPid})`;
    const result = await run.result();
    await gate.unsafe("rollback");
    await gate.end();
    expect(result.code).toBe(1);
    expect(failure(result).message).toContain("002_blocked.sql");
    expect(await tableExists(db.sql, "blocked_half")).toBe(false);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_gate": "applied" });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    expect(await tableExists(db.sql, "blocked_rest")).toBe(true);
  });

  test("losing the lock's connection stops the run before the migration commits", async () => {
    const db = await server.fresh();
    const { gate, lockPid, run } = await startBlocked(db);
    // pg_terminate_backend only signals the backend; with a timeout it returns once the backend is
    // gone and its lock released, so the migration's check before COMMIT cannot still see it held.
    const [terminated] = await db.sql`select pg_terminate_backend(${lockPid}, 5000) as done`;
    expect(terminated!.done).toBe(true);
    await gate.unsafe("rollback");
    await gate.end();
    const result = await run.result();
    expect(result.code).toBe(1);
    expect(failure(result).message).toContain("migration lock was lost");
    expect(await tableExists(db.sql, "blocked_half")).toBe(false);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_gate": "applied" });
    // The lock's session is gone, so the run's history row was completed through the migration session.
    expect((await lastRun(db.sql))!.outcome).toBe("failed");
  });
});
