/**
 * Large migration files: a file of tens of thousands of statements is linted, planned and applied
 * without holding up SIGTERM past Railway's 5-second grace, and a file over the size limit is
 * refused before it is parsed. The files are generated here, never committed.
 */
import { describe, expect, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { watchBothStreams } from "./support/watch-output.ts";
import { catalogPicture, tableExists, trackedStatuses, lastRun, migrationLockHolders } from "./support/catalog.ts";
import { SQL_FILE_LIMIT_BYTES } from "../src/files/sql-statements.ts";

const server = useTestServer();

/** Railway's grace between SIGTERM and SIGKILL. */
const GRACE_MS = 5_000;
const LARGE_STATEMENTS = 40_000;

/** A table every 100 statements and rows into it otherwise, some text multibyte: about 2.7 MB. */
function largeMigration(statements: number): string {
  const lines: string[] = [];
  for (let i = 0; i < statements; i++) {
    const table = `big_${i - (i % 100)}`;
    lines.push(i % 100 === 0 ? `create table ${table} (id bigint primary key, note text);` : `insert into ${table} (id, note) values (${i}, 'größe ${i} ✓');`);
  }
  return `${lines.join("\n")}\n`;
}

/** A database with 001 applied (so the run history exists) and a 40,000-statement 002 pending. */
async function withLargePending(): Promise<{ db: TestDatabase; dir: string }> {
  const db = await server.fresh();
  const dir = await migrationsFolder({ "001_small.sql": "create table small (id bigint primary key);\n" });
  expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
  await writeFile(join(dir, "002_large.sql"), largeMigration(LARGE_STATEMENTS));
  return { db, dir };
}

/** Starts up, sends SIGTERM once a log event shows on stdout, and times the exit from the signal. */
async function terminateAfterEvent(db: TestDatabase, dir: string, event: string): Promise<{ result: RunResult; exitMs: number }> {
  const job = watchBothStreams([], { url: db.url, migrationsDir: dir });
  await job.until("stdout", (output) => output.includes(`"event":"${event}"`));
  const signalledAt = performance.now();
  job.child.kill("SIGTERM");
  const result = await job.result();
  return { result, exitMs: performance.now() - signalledAt };
}

async function expectNothingOfTheLargeFile(db: TestDatabase): Promise<void> {
  expect(await tableExists(db.sql, "big_0")).toBe(false);
  expect(await trackedStatuses(db.sql)).toEqual({ "001_small": "applied" });
  expect([...(await migrationLockHolders(db.sql)), ...(await migrationLockHolders(db.sql, false))]).toEqual([]);
  expect((await lastRun(db.sql))!.outcome).toBe("cancelled");
}

describe("a file of 40,000 statements", () => {
  test("SIGTERM while up lints and plans it: exit 143 within 5 s of the signal, nothing applied, the lock released", async () => {
    const { db, dir } = await withLargePending();
    // Right after the lock comes the lint gate, then the plan: seconds of work on this file.
    const { result, exitMs } = await terminateAfterEvent(db, dir, "lock_acquired");

    expect(result.code).toBe(143);
    expect(exitMs).toBeLessThan(GRACE_MS);
    expect(failure(result)).toMatchObject({ error: "cancelled", signal: "SIGTERM" });
    expect(result.events.some((e) => e.event === "migration_started")).toBe(false);
    await expectNothingOfTheLargeFile(db);
  });

  test("SIGTERM while plan lints and plans it: plan stops with the cancelled error, within 5 s", async () => {
    const { db, dir } = await withLargePending();
    const job = watchBothStreams(["plan"], { url: db.url, migrationsDir: dir });
    await job.until("stdout", (output) => output.includes('"event":"run_started"'));
    const signalledAt = performance.now();
    job.child.kill("SIGTERM");
    const result = await job.result();
    expect(result.code).toBe(143);
    expect(performance.now() - signalledAt).toBeLessThan(GRACE_MS);
    // The job's own cancellation, not the forced exit (which logs nothing).
    expect(failure(result)).toMatchObject({ error: "cancelled", signal: "SIGTERM" });
  });

  test("SIGTERM while its statements are applied: the job stops itself within 5 s, before the forced exit, and rolls the file back", async () => {
    const { db, dir } = await withLargePending();
    const { result, exitMs } = await terminateAfterEvent(db, dir, "migration_started");

    expect(result.code).toBe(143);
    expect(exitMs).toBeLessThan(GRACE_MS);
    // The forced exit would end the process without this error event.
    expect(failure(result)).toMatchObject({ error: "cancelled", signal: "SIGTERM" });
    expect(failure(result).message).toContain("002_large");
    await expectNothingOfTheLargeFile(db);
  });
});

describe("a file over the size limit", () => {
  // Just over the limit, and not SQL at all: a size refusal, and no syntax refusal, shows it was never parsed.
  const oversized = "selec 1;\n".repeat(Math.ceil((SQL_FILE_LIMIT_BYTES + 1) / 9));
  const size = new TextEncoder().encode(oversized).length;
  const files = { "001_small.sql": "create table small (id bigint primary key);\n", "002_seed.sql": oversized };

  function expectSizeRefusal(message: string): void {
    expect(message).toContain("002_seed.sql");
    expect(message).toContain(`the file is ${size.toLocaleString("en-US")} bytes (4.0 MiB), over the limit of 4,194,304 bytes (4 MiB)`);
    expect(message).toContain("split it into files of at most 4 MiB each");
  }

  test("up refuses it before parsing: exit 4 naming the file, its size, the limit and the fix, and nothing applied", async () => {
    const db = await server.fresh();
    const before = await catalogPicture(db.sql);
    const result = await runMain([], { url: db.url, migrationsDir: await migrationsFolder(files) });

    expect(result.code).toBe(4);
    expect(failure(result)).toMatchObject({ error: "refused", checks: ["size"], files: ["002_seed.sql"] });
    expectSizeRefusal(failure(result).message);
    expect(await catalogPicture(db.sql)).toBe(before);
  });

  test("plan and check refuse it the same way", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder(files);
    const plan = await runMain(["plan", "--json"], { url: db.url, migrationsDir: dir });
    expect(plan.code).toBe(4);
    const document = JSON.parse(plan.stdout) as { outcome: string; refusals: { check: string; file: string; message: string; resolution: string }[] };
    expect(document.outcome).toBe("refuse");
    expect(document.refusals.map(({ check, file }) => ({ check, file }))).toEqual([{ check: "size", file: "002_seed.sql" }]);
    const [refusal] = document.refusals;
    expectSizeRefusal(`${refusal!.file}: ${refusal!.message}; ${refusal!.resolution}`);

    const check = await runMain(["check"], { migrationsDir: dir });
    expect(check.code).toBe(4);
    expectSizeRefusal(failure(check).message);
  });
});
