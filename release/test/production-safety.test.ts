/**
 * Production safety: table-lock timeouts with retries, errors that are not retried, cancellation
 * by SIGTERM, SIGINT and the run budget, invalid indexes left by CREATE INDEX CONCURRENTLY, a
 * database that comes up after the job starts, the lock's ownership, and per-file timeouts.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { choosePort, startTestServer, TEST_PASSWORD, type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { watchBothStreams } from "./support/watch-output.ts";
import { eventually } from "./support/eventually.ts";
import { tableExists, trackedStatuses, lastRun, migrationLockHolders } from "./support/catalog.ts";
import { assertOwnBackendHolds, MIGRATION_LOCK_KEY } from "../src/database/lock.ts";
import { DatabaseUnavailableError } from "../src/shared/errors.ts";

const server = useTestServer();

const TABLE = "create table accounts (id int primary key, balance int not null default 0);\ninsert into accounts select g from generate_series(1, 100) g;\n";
const ADD_COLUMN = "alter table accounts add column note text;\n";

/** A database with 001 applied, so the history table exists, and a folder to add migrations to. */
async function applied(): Promise<{ db: TestDatabase; dir: string }> {
  const db = await server.fresh();
  const dir = await migrationsFolder({ "001_accounts.sql": TABLE });
  expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
  return { db, dir };
}

/** Another session reading the table in an open transaction: it holds ACCESS SHARE until it ends. */
async function idleReader(db: TestDatabase) {
  const reader = postgres(db.url, { max: 1, connection: { application_name: "report-job" }, onnotice: () => undefined });
  await reader`begin`;
  const [{ pid }] = (await reader`select pg_backend_pid() as pid, count(*) from accounts`) as unknown as [{ pid: number }];
  return { pid, release: async () => { await reader`rollback`; await reader.end(); } };
}

/** Far beyond the wait a reader may have behind the migration's lock request (lock_timeout plus slack). */
const READ_STUCK_MS = 10_000;

const retries = (result: RunResult) => result.events.filter((e) => e.event === "migration_retry");

describe("lock contention", () => {
  test("a migration waiting on a busy table gives way after lock_timeout, retries, and applies once the table is free; readers are never stuck behind it for long", async () => {
    const { db, dir } = await applied();
    await writeFile(join(dir, "002_note.sql"), ADD_COLUMN);
    const reader = await idleReader(db);
    const lockTimeoutMs = 400;
    const job = watchBothStreams([], { url: db.url, migrationsDir: dir, env: { MIGRATE_LOCK_TIMEOUT: `${lockTimeoutMs}ms`, MIGRATE_LOCK_ATTEMPTS: "10" } });

    // A third session keeps reading the table while the job retries: it may queue behind the
    // migration's lock request, but only until that request times out. Its own statement_timeout
    // turns a read stuck behind a migration that never gives way into a failure, not a hang.
    const third = postgres(db.url, { max: 1, connection: { statement_timeout: READ_STUCK_MS }, onnotice: () => undefined });
    const readTimes: number[] = [];
    await eventually("two migration_retry events while the table is busy", async () => {
      const started = performance.now();
      await third`select count(*) from accounts`;
      readTimes.push(performance.now() - started);
      return (job.stderrSoFar().match(/"migration_retry"/g) ?? []).length >= 2 ? true : undefined;
    });
    await reader.release();
    const result = await job.result();
    await third.end();

    expect(result.code).toBe(0);
    expect(await tableExists(db.sql, "accounts")).toBe(true);
    const [column] = await db.sql`select count(*)::int as n from information_schema.columns where table_name = 'accounts' and column_name = 'note'`;
    expect(column!.n).toBe(1);
    const attempts = retries(result);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts[0]).toMatchObject({ level: "warn", migration: "002_note", attempt: 1, code: "55P03" });
    expect(String(attempts[0]!.blockers)).toContain(`pid ${reader.pid} "report-job" (idle in transaction`);
    expect(Math.max(...readTimes)).toBeLessThan(lockTimeoutMs + 1_500);
  });

  test("held past every attempt: exit 1 listing the attempts, nothing applied, each lost attempt in the run history", async () => {
    const { db, dir } = await applied();
    await writeFile(join(dir, "002_note.sql"), ADD_COLUMN);
    const reader = await idleReader(db);
    const result = await runMain([], { url: db.url, migrationsDir: dir, env: { MIGRATE_LOCK_TIMEOUT: "200ms", MIGRATE_LOCK_ATTEMPTS: "2" } });
    await reader.release();

    expect(result.code).toBe(1);
    const event = failure(result);
    expect(event).toMatchObject({ error: "lock_contention", file: "002_note.sql", line: 1, code: "55P03", attempts: 2 });
    expect(event.message).toContain("gave up after 2 attempts");
    expect(event.message).toContain(`attempt 1: SQLSTATE 55P03, blocked by pid ${reader.pid} "report-job"`);
    expect(event.message).toContain(`attempt 2: SQLSTATE 55P03, blocked by pid ${reader.pid} "report-job"`);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_accounts": "applied" });
    const history = await db.sql`select kind, outcome, attempt, error_code from platform.schema_migrations_runs order by id`;
    expect(history.map((row) => ({ ...row }))).toEqual([
      { kind: "run", outcome: "succeeded", attempt: null, error_code: null },
      { kind: "run", outcome: "failed", attempt: null, error_code: "55P03" },
      { kind: "attempt", outcome: "lost", attempt: 1, error_code: "55P03" },
      { kind: "attempt", outcome: "lost", attempt: 2, error_code: "55P03" },
    ]);
  });

  test("any other error is not retried, a syntax error found only at run time included", async () => {
    const { dir, db } = await applied();
    await writeFile(join(dir, "002_dynamic.sql"), "create table dynamic (id int);\ndo $$ begin execute 'selec 1'; end $$;\n");
    const result = await runMain([], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(1);
    expect(failure(result)).toMatchObject({ error: "migration_failed", file: "002_dynamic.sql", line: 2, code: "42601" });
    expect(retries(result)).toEqual([]);
    expect(await tableExists(db.sql, "dynamic")).toBe(false);
  });
});

describe("cancellation", () => {
  const sleeping = "create table sleeper (id int);\nselect pg_sleep(60);\n";

  async function cancelDuringSleep(signal: "SIGTERM" | "SIGINT", env: Record<string, string> = {}) {
    const { db, dir } = await applied();
    await writeFile(join(dir, "002_sleeper.sql"), sleeping);
    const job = watchBothStreams([], { url: db.url, migrationsDir: dir, env });
    // Wait until the statement runs on the server, not merely until the job logged it.
    await eventually("the migration's pg_sleep to run on the server", async () => {
      const rows = await db.sql`select 1 from pg_stat_activity where application_name = 'studio-migrate' and query like 'select pg_sleep%'`;
      return rows.length > 0 ? true : undefined;
    });
    const signalledAt = performance.now();
    if (signal) job.child.kill(signal);
    const result = await job.result();
    return { db, result, exitMs: performance.now() - signalledAt };
  }

  test("SIGTERM during a long statement: exit 143 within 5 s, nothing applied, lock released, run recorded as cancelled", async () => {
    const { db, result, exitMs } = await cancelDuringSleep("SIGTERM");
    expect(result.code).toBe(143);
    expect(exitMs).toBeLessThan(5_000);
    expect(failure(result)).toMatchObject({ error: "cancelled", signal: "SIGTERM" });
    expect(failure(result).message).toContain("cancelled by SIGTERM: stopped while applying 002_sleeper");
    // The last line says what of the run is live: nothing, as it stopped at its first file.
    expect(failure(result)).toMatchObject({ applied: [], applied_count: 0, stopped_at: "002_sleeper", not_attempted: [], not_attempted_count: 0 });
    expect(failure(result).message).toEndWith("\n    in this run: nothing applied; stopped at 002_sleeper; nothing left unattempted");
    expect(result.events.at(-1)?.event).toBe("run_failed");
    expect(result.events.find((e) => e.event === "cancelling")?.interrupted).toBe("applying 002_sleeper");
    expect(await tableExists(db.sql, "sleeper")).toBe(false);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_accounts": "applied" });
    expect([...(await migrationLockHolders(db.sql)), ...(await migrationLockHolders(db.sql, false))]).toEqual([]);
    expect((await lastRun(db.sql))!.outcome).toBe("cancelled");
  });

  test("SIGINT (Ctrl-C) does the same with exit 130", async () => {
    const { db, result } = await cancelDuringSleep("SIGINT");
    expect(result.code).toBe(130);
    expect(failure(result)).toMatchObject({ error: "cancelled", signal: "SIGINT" });
    expect(await tableExists(db.sql, "sleeper")).toBe(false);
  });

  test("the whole-run budget, MIGRATE_RUN_TIMEOUT, aborts the same way", async () => {
    const { db, dir } = await applied();
    await writeFile(join(dir, "002_sleeper.sql"), sleeping);
    const result = await runMain([], { url: db.url, migrationsDir: dir, env: { MIGRATE_RUN_TIMEOUT: "1500ms" } });
    expect(result.code).toBe(1);
    expect(failure(result)).toMatchObject({ error: "cancelled", budget_ms: 1500 });
    expect(failure(result).message).toContain("MIGRATE_RUN_TIMEOUT");
    expect(await tableExists(db.sql, "sleeper")).toBe(false);
  });
});

describe("invalid indexes", () => {
  test("a failed CREATE INDEX CONCURRENTLY names the invalid index it left, in the failure and in status; resolve drops it and the retry builds a valid one", async () => {
    const { db, dir } = await applied();
    await db.sql`update accounts set balance = 7 where id in (1, 2)`;
    await writeFile(join(dir, "002_unique_balance.sql"), "-- migrate:no-transaction\ncreate unique index concurrently accounts_balance_key on accounts (balance) where balance > 0;\n");

    const failed = await runMain([], { url: db.url, migrationsDir: dir });
    expect(failed.code).toBe(1);
    expect(failure(failed)).toMatchObject({ file: "002_unique_balance.sql", line: 2, code: "23505" });
    expect(failure(failed).message).toContain("left the invalid index public.accounts_balance_key behind");
    const [invalid] = await db.sql`select indisvalid from pg_index where indexrelid = 'accounts_balance_key'::regclass`;
    expect(invalid!.indisvalid).toBe(false);

    const status = await runMain(["status"], { url: db.url, migrationsDir: dir, env: { LOG_FORMAT: "text" } });
    expect(status.stdout).toContain("left the invalid index public.accounts_balance_key behind");

    await db.sql`update accounts set balance = 8 where id = 2`;
    const resolved = await runMain(["resolve", "2", "--rolled-back"], { url: db.url, migrationsDir: dir });
    expect(resolved.code).toBe(0);
    expect(resolved.events.find((e) => e.event === "invalid_index_dropped")?.index).toBe("public.accounts_balance_key");
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    const [valid] = await db.sql`select indisvalid from pg_index where indexrelid = 'accounts_balance_key'::regclass`;
    expect(valid!.indisvalid).toBe(true);
  });
});

describe("start-up", () => {
  test("a database that comes up after the job started is waited for, within the limit", async () => {
    const port = choosePort();
    const url = `postgresql://postgres:${encodeURIComponent(TEST_PASSWORD)}@127.0.0.1:${port}/postgres`;
    const job = watchBothStreams([], { url, migrationsDir: await migrationsFolder({ "001_accounts.sql": TABLE }), env: { MIGRATE_CONNECT_TIMEOUT: "60s" } });
    await job.until("stderr", (stderr) => stderr.includes('"connect_retry"'));
    const late = await startTestServer({ port });
    try {
      const result = await job.result();
      expect(result.code).toBe(0);
      expect(result.events.filter((e) => e.event === "connect_retry")[0]).toMatchObject({ code: "ECONNREFUSED" });
      expect(result.events.find((e) => e.event === "migration_applied")?.migration).toBe("001_accounts");
    } finally {
      await late.stop();
    }
  });
});

describe("the lock's ownership", () => {
  test("a session whose backend does not hold the lock (as behind a transaction-mode pooler) is refused with exit 3", async () => {
    const db = await server.fresh();
    const holder = postgres(db.url, { max: 1, onnotice: () => undefined });
    const other = postgres(db.url, { max: 1, onnotice: () => undefined });
    try {
      await holder`select pg_advisory_lock(${MIGRATION_LOCK_KEY}::bigint)`;
      const [{ pid }] = (await other`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      const error = await assertOwnBackendHolds({ sql: other, pid }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DatabaseUnavailableError);
      expect((error as DatabaseUnavailableError).exitCode).toBe(3);
      expect((error as Error).message).toContain("pooler in transaction mode");
      const [{ pid: holderPid }] = (await holder`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      await assertOwnBackendHolds({ sql: holder, pid: holderPid });
    } finally {
      await Promise.all([holder.end(), other.end()]);
    }
  });
});

describe("timeouts", () => {
  test("every migration runs with the configured timeouts, and a file's directives override them for that file only", async () => {
    const db = await server.fresh();
    const record = (file: string) => `insert into seen values ('${file}', current_setting('lock_timeout'), current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout'));\n`;
    const dir = await migrationsFolder({
      "001_seen.sql": "create table seen (file text, lock_timeout text, statement_timeout text, idle_timeout text);\n",
      "002_default.sql": record("002"),
      "003_patient.sql": `-- migrate:lock-timeout 10s\n-- migrate:statement-timeout 30min\n${record("003")}`,
      "004_no_transaction.sql": `-- migrate:no-transaction\n-- migrate:statement-timeout 2min\n${record("004")}`,
      "005_after.sql": record("005"),
    });
    expect((await runMain([], { url: db.url, migrationsDir: dir, env: { MIGRATE_LOCK_TIMEOUT: "3s" } })).code).toBe(0);
    const seen = await db.sql`select file, lock_timeout, statement_timeout, idle_timeout from seen order by file`;
    expect(seen.map((row) => ({ ...row }))).toEqual([
      { file: "002", lock_timeout: "3s", statement_timeout: "10min", idle_timeout: "1min" },
      { file: "003", lock_timeout: "10s", statement_timeout: "30min", idle_timeout: "1min" },
      { file: "004", lock_timeout: "3s", statement_timeout: "2min", idle_timeout: "1min" },
      { file: "005", lock_timeout: "3s", statement_timeout: "10min", idle_timeout: "1min" },
    ]);
  });
});

describe("the lint gate in up", () => {
  test("a breaking change is refused before anything runs, naming file, line and rule; MIGRATE_LINT=warn lets it through, saying so", async () => {
    const { db, dir } = await applied();
    await writeFile(join(dir, "002_rename.sql"), "create table extra (id int);\nalter table accounts rename column balance to amount;\n");
    const refused = await runMain([], { url: db.url, migrationsDir: dir });
    expect(refused.code).toBe(4);
    expect(failure(refused).message).toContain("002_rename.sql:2");
    expect(failure(refused).message).toContain("renaming-column");
    expect(await tableExists(db.sql, "extra")).toBe(false);

    const relaxed = await runMain([], { url: db.url, migrationsDir: dir, env: { MIGRATE_LINT: "warn" } });
    expect(relaxed.code).toBe(0);
    const warning = relaxed.events.find((e) => e.event === "lint_warning" && String(e.message).includes("renaming-column"));
    expect(warning?.message).toContain("MIGRATE_LINT=warn");
    expect(await tableExists(db.sql, "extra")).toBe(true);
  });

  test("check lints without a database", async () => {
    const dir = await migrationsFolder({ "001_accounts.sql": TABLE, "002_drop.sql": "alter table accounts drop column balance;\n" });
    const result = await runMain(["check"], { migrationsDir: dir });
    expect(result.code).toBe(4);
    expect(result.stdout).toContain("002_drop.sql:1");
    expect(result.stdout).toContain("ban-drop-column");
  });
});
