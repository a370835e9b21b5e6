/**
 * Every fix line is a command that does exactly the repair and nothing more, chosen from what the
 * database holds, and every statement about the records is true. Each fix line here is run.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { watchBothStreams } from "./support/watch-output.ts";
import { trackedStatuses } from "./support/catalog.ts";
import { eventually } from "./support/eventually.ts";

const server = useTestServer();

const ACCOUNTS = "create table accounts (id bigint primary key, balance bigint);\ninsert into accounts select g, g from generate_series(1, 1000) g;\n";
const BALANCE_INDEX = "-- migrate:no-transaction\ncreate index concurrently accounts_balance_idx on accounts (balance);\n";

/** The fix line of a refusal, as the job printed it. */
function fixOf(result: RunResult): string {
  const fix = /fix: (.*)/.exec(failure(result).message);
  if (!fix) throw new Error(`no fix line in: ${failure(result).message}`);
  return fix[1]!;
}

/** The job's arguments in a fix line: everything after `bun release/migrate.ts`. */
function commandIn(fix: string): string[] {
  const command = /bun release\/migrate\.ts ((?:[\w-]+ ?)+)/.exec(fix);
  if (!command) throw new Error(`no command in: ${fix}`);
  return command[1]!.trim().split(" ");
}

async function indexValidity(db: TestDatabase, name: string): Promise<boolean | undefined> {
  const [row] = await db.sql<{ valid: boolean }[]>`select indisvalid as valid from pg_index where indexrelid = to_regclass(${name})`;
  return row?.valid;
}

async function setUp() {
  const db = await server.fresh();
  const dir = await migrationsFolder({ "001_accounts.sql": ACCOUNTS });
  expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
  return { db, dir };
}

describe("a killed CREATE INDEX CONCURRENTLY whose build had in fact finished", () => {
  test("the refusal says to record it as applied, --rolled-back is refused, and the fix line works without building it again", async () => {
    const { db, dir } = await setUp();
    await writeFile(join(dir, "002_balance_index.sql"), BALANCE_INDEX);
    // A writer the build must wait for: the job is killed while it waits, and the build goes on without it.
    const writer = postgres(db.url, { max: 1, onnotice: () => undefined });
    await writer`begin`;
    await writer`insert into accounts values (1001, 1001)`;
    const run = watchBothStreams([], { url: db.url, migrationsDir: dir, env: { MIGRATE_LOCK_TIMEOUT: "60s" } });
    const buildPid = await eventually("the index build to wait for the test's writer", async () => {
      const [row] = await db.sql<{ pid: number }[]>`select pid from pg_stat_progress_create_index where relid = 'accounts'::regclass`;
      return row?.pid;
    });
    run.child.kill("SIGKILL");
    await run.child.exited;
    await writer`commit`;
    await writer.end();
    await eventually("the orphaned build to finish", async () => ((await indexValidity(db, "accounts_balance_idx")) ? true : undefined));
    await eventually("its backend to end", async () => ((await db.sql`select 1 from pg_stat_activity where pid = ${buildPid}`).length === 0 ? true : undefined));
    expect(await trackedStatuses(db.sql)).toMatchObject({ "002_balance_index": "running" });

    const refused = await runMain([], { url: db.url, migrationsDir: dir });
    expect(refused.code).toBe(4);
    const fix = fixOf(refused);
    expect(fix).toContain("accounts_balance_idx is valid");
    expect(commandIn(fix)).toEqual(["resolve", "2", "--applied"]);

    const wrong = await runMain(["resolve", "2", "--rolled-back"], { url: db.url, migrationsDir: dir });
    expect(wrong.code).toBe(4);
    expect(commandIn(fixOf(wrong))).toEqual(["resolve", "2", "--applied"]);
    expect(await indexValidity(db, "accounts_balance_idx")).toBe(true);

    const repaired = await runMain(commandIn(fix), { url: db.url, migrationsDir: dir });
    expect(repaired.code).toBe(0);
    const next = await runMain([], { url: db.url, migrationsDir: dir });
    expect(next.code).toBe(0);
    expect(next.events.filter((e) => e.event === "migration_started")).toEqual([]);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_accounts": "applied", "002_balance_index": "applied" });
  });
});

describe("a CREATE INDEX CONCURRENTLY that failed and left an invalid index", () => {
  test("the failure and the refusal say --rolled-back, --applied is refused, and the fix line retries it into a valid index", async () => {
    const { db, dir } = await setUp();
    await db.sql`update accounts set balance = 7 where id = 1`;
    await writeFile(join(dir, "002_balance_key.sql"), "-- migrate:no-transaction\ncreate unique index concurrently accounts_balance_key on accounts (balance);\n");
    const failed = await runMain([], { url: db.url, migrationsDir: dir });
    expect(failed.code).toBe(1);
    expect(failure(failed).message).toContain("it was the first of 1 statements, so none had run before it");
    expect(failure(failed).message).toContain("it is recorded as failed");
    expect(failure(failed).message).toContain("resolve 2 --rolled-back");
    expect(failure(failed).message).not.toContain("resolve 2 --applied");

    const refused = await runMain([], { url: db.url, migrationsDir: dir });
    const fix = fixOf(refused);
    expect(fix).toContain("accounts_balance_key is invalid");
    expect(commandIn(fix)).toEqual(["resolve", "2", "--rolled-back"]);
    const wrong = await runMain(["resolve", "2", "--applied"], { url: db.url, migrationsDir: dir });
    expect(wrong.code).toBe(4);
    expect(await trackedStatuses(db.sql)).toMatchObject({ "002_balance_key": "failed" });

    await db.sql`update accounts set balance = 0 where id = 1`;
    expect((await runMain(commandIn(fix), { url: db.url, migrationsDir: dir })).code).toBe(0);
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    expect(await indexValidity(db, "accounts_balance_key")).toBe(true);
  });
});

describe("statements about the records are true", () => {
  test("a no-transaction file whose session is terminated part-way is recorded as failed through the lock's session, as the message says", async () => {
    const { db, dir } = await setUp();
    await writeFile(join(dir, "002_two_steps.sql"), "-- migrate:no-transaction\ncreate table step_one (id int);\nupdate accounts set balance = balance where id = 1;\n");
    const writer = postgres(db.url, { max: 1, onnotice: () => undefined });
    await writer`begin`;
    await writer`select * from accounts where id = 1 for update`;
    const run = watchBothStreams([], { url: db.url, migrationsDir: dir, env: { MIGRATE_LOCK_TIMEOUT: "60s" } });
    const workPid = await eventually("the second statement to wait on the test's row lock", async () => {
      const [row] = await db.sql<{ pid: number }[]>`select pid from pg_stat_activity where application_name = 'studio-migrate' and wait_event_type = 'Lock'`;
      return row?.pid;
    });
    await db.sql`select pg_terminate_backend(${workPid}, 5000)`;
    const result = await run.result();
    await writer`rollback`;
    await writer.end();
    expect(result.code).toBe(1);
    expect(failure(result).message).toContain("statement 1 of 2 ran before it and stays applied");
    expect(failure(result).message).toContain("it is recorded as failed");
    expect(await trackedStatuses(db.sql)).toMatchObject({ "002_two_steps": "failed" });
  });

  test("resolve on a migration that needs nothing points at status, and that command runs", async () => {
    const { db, dir } = await setUp();
    const refused = await runMain(["resolve", "1", "--rolled-back"], { url: db.url, migrationsDir: dir });
    expect(refused.code).toBe(4);
    const command = commandIn(fixOf(refused));
    expect(command).toEqual(["status"]);
    expect((await runMain(command, { url: db.url, migrationsDir: dir })).code).toBe(0);
  });
});
