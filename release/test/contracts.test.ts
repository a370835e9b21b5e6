/**
 * Contract tests, in golang-migrate's shared-suite style: each part the job is built from (the
 * storage, the lock, the runner) has one suite that states what it promises, and every variant it
 * must support runs the same suite. They talk to a real PostgreSQL from the test's own process,
 * through the job's own sessions: the end-to-end tests (faults, records, sessions) rest on these
 * promises, and a broken one fails here under its own name.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { TransactionSql } from "postgres";
import { nodeFileSystem } from "../host/node-file-system.ts";
import { type TestDatabase, TEST_PASSWORD, useTestServer } from "./support/postgres.ts";
import { PLATFORM_MIGRATIONS, REPO_ROOT, migrationsFolder } from "./support/run-migrate.ts";
import { eventually } from "./support/eventually.ts";
import { tableExists, trackedStatuses, migrationLockHolders } from "./support/catalog.ts";
import { parseConfig, type Config } from "../src/shared/config.ts";
import { COMMANDS } from "../src/commands/table.ts";
import { runEvents } from "../src/run/run-events.ts";
import { migrationSessionSettings, openSession, type Session } from "../src/database/database.ts";
import { DatabaseUnavailableError, RunAbortedError } from "../src/shared/errors.ts";
import { MIGRATION_LOCK_KEY, withMigrationLock, type HeldLock, type LockOptions } from "../src/database/lock.ts";
import { createLogger, type Logger } from "../src/shared/log.ts";
import { readMigrationFolder, type MigrationFile } from "../src/files/migration-files.ts";
import { redactorFor } from "../src/shared/redact.ts";
import { applyMigrations, inLockedTransaction, planMigrations, type RunnerDeps } from "../src/run/runner.ts";
import { loadSqlParser } from "../src/files/sql-statements.ts";
import { MigrationStorage, type MigrationRecord } from "../src/database/storage.ts";
import { inlined, sqlLiteral } from "../src/database/inline-values.ts";
import { Pipeline } from "../src/database/pipeline.ts";

const server = useTestServer();

/** The job's configuration for `db`, parsed by the job's own parser from its environment. */
function jobConfig(db: TestDatabase, env: Record<string, string> = {}): Config {
  const layout = { migrationsDir: PLATFORM_MIGRATIONS, embeddedDataDir: `${REPO_ROOT}/.embedded-postgres` };
  return parseConfig([], { DATABASE_URL: db.url, ...env }, false, layout, COMMANDS) as Config;
}

interface LogEvent {
  readonly level: string;
  readonly event: string;
  readonly [attribute: string]: unknown;
}

/** The job's JSON logger, its lines kept as events. */
function recordingLogger(db: TestDatabase): { logger: Logger; events: LogEvent[] } {
  const events: LogEvent[] = [];
  const keep = (line: string) => void events.push(JSON.parse(line) as LogEvent);
  return { logger: createLogger("json", { stdout: keep, stderr: keep }, redactorFor(db.url)), events };
}

const opened: Session[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((session) => session.close()));
});

/** A session as the job opens one: "migration" with the migration settings, "lock" without. */
async function jobSession(db: TestDatabase, role: "migration" | "lock", logger: Logger): Promise<Session> {
  const config = jobConfig(db);
  const session = await openSession({
    url: db.url,
    connectTimeoutMs: 5_000,
    runner: config.runner,
    logger,
    role,
    onNotice: () => undefined,
    ...(role === "migration" ? { settings: migrationSessionSettings(config.policy) } : {}),
  });
  opened.push(session);
  return session;
}

async function migrationFiles(files: Record<string, string>): Promise<MigrationFile[]> {
  return (await readMigrationFolder(await migrationsFolder(files), nodeFileSystem, { refuseIgnored: false })).files;
}

function lockOptions(logger: Logger, waitMs = 30_000): LockOptions {
  return { waitMs, logger, signal: new AbortController().signal };
}

/** Backends waiting in PostgreSQL's queue for the migration lock. */
async function queuedForTheLock(db: TestDatabase): Promise<number[]> {
  return migrationLockHolders(db.sql, false);
}

async function lockHolders(db: TestDatabase): Promise<number[]> {
  return migrationLockHolders(db.sql);
}

/** A promise and the function that settles it: the test decides when a lock holder lets go. */
function letGoSignal(): { given: Promise<void>; give: () => void } {
  let give: () => void = () => undefined;
  const given = new Promise<void>((resolve) => (give = resolve));
  return { given, give };
}

class RolledBackOnPurpose extends Error {}

/** Runs `body` in a transaction on the session and rolls it back. */
async function inRolledBackTransaction(session: Session, body: (tx: TransactionSql) => Promise<void>): Promise<void> {
  const rollback = session.sql.begin(async (tx) => {
    await body(tx);
    throw new RolledBackOnPurpose();
  });
  await expect(rollback).rejects.toBeInstanceOf(RolledBackOnPurpose);
}

function byVersion(records: readonly MigrationRecord[]): Map<number, MigrationRecord> {
  return new Map(records.map((record) => [record.version, record]));
}

/* The storage contract: every tracking table the job can be configured with keeps these promises. */

const STORAGE_SUBJECTS = [
  { label: "the default table, platform.schema_migrations", env: {} },
  { label: "MIGRATIONS_TABLE in a schema of its own, created on demand", env: { MIGRATIONS_TABLE: "ops.release_migrations" } },
] as const;

for (const subject of STORAGE_SUBJECTS) {
  describe(`storage contract: ${subject.label}`, () => {
    const THREE = {
      "001_first.sql": "create table first (id int);\n",
      "002_second.sql": "-- migrate:no-transaction\ncreate index concurrently first_id on first (id);\n",
      "003_third.sql": "create table third (id int);\n",
    };

    async function storageOn() {
      const db = await server.fresh();
      const config = jobConfig(db, subject.env);
      const { logger } = recordingLogger(db);
      const work = await jobSession(db, "migration", logger);
      const storage = new MigrationStorage(config.table, { appliedBy: "contract test", deploymentId: undefined, gitCommit: undefined, environment: undefined }, redactorFor(db.url));
      const [first, second, third] = await migrationFiles(THREE);
      return { db, work, storage, first: first!, second: second!, third: third! };
    }

    test("before ensureTable there is no table and no record; ensureTable creates it, and again changes nothing", async () => {
      const { db, work, storage } = await storageOn();
      expect(await storage.exists(work.sql)).toBe(false);
      expect(await storage.records(work.sql)).toEqual([]);
      await storage.ensureTable(work.sql);
      await storage.ensureTable(work.sql);
      const [table] = await db.sql<{ name: string | null }[]>`select to_regclass(${storage.qualifiedName})::text as name`;
      expect(table!.name).toBe(storage.qualifiedName);
      expect(await storage.records(work.sql)).toEqual([]);
    });

    test("in a pipeline, logMigration's record commits with the pipeline, and a version recorded already fails it before the COMMIT", async () => {
      const { db, work, storage, first } = await storageOn();
      await storage.ensureTable(work.sql);
      const sendRecord = async () => {
        const pipeline = new Pipeline();
        pipeline.send(work.sql`begin`);
        await storage.logMigration({ context: { sql: work.sql, migration: first, startedAt: performance.now(), pipeline } });
        // Not executed until the pipeline settles: a rolled-back attempt must be retried by Umzug.
        expect(await storage.executed()).toEqual([]);
        pipeline.send(work.sql`commit`);
        return pipeline.settle();
      };
      await sendRecord();
      expect(await storage.executed()).toEqual(["001_first"]);
      expect((await storage.records(db.sql)).map((record) => record.status)).toEqual(["applied"]);
      const appliedAt = (await storage.records(db.sql))[0]!.appliedAt;
      const again = new MigrationStorage(jobConfig(db, subject.env).table, { appliedBy: "another run", deploymentId: undefined, gitCommit: undefined, environment: undefined }, redactorFor(db.url));
      const pipeline = new Pipeline();
      pipeline.send(work.sql`begin`);
      await again.logMigration({ context: { sql: work.sql, migration: first, startedAt: performance.now(), pipeline } });
      pipeline.send(work.sql`create table written_after (id int)`);
      pipeline.send(work.sql`commit`);
      await expect(pipeline.settle()).rejects.toThrow("001_first.sql is already recorded as applied by another run");
      expect(await again.executed()).toEqual([]);
      expect(await tableExists(db.sql, "written_after")).toBe(false);
      expect(await storage.records(db.sql)).toMatchObject([{ status: "applied", appliedBy: "contract test", appliedAt }]);
    });

    test("logMigration writes through the context's connection: rolled back with that transaction, committed with it", async () => {
      const { db, work, storage, first } = await storageOn();
      await storage.ensureTable(work.sql);
      await inRolledBackTransaction(work, async (tx) => {
        await storage.logMigration({ context: { sql: tx, migration: first, startedAt: performance.now() } });
        expect((await storage.records(tx)).map((record) => record.status)).toEqual(["applied"]);
        // Another session sees nothing until the migration's transaction commits.
        expect(await storage.records(db.sql)).toEqual([]);
      });
      expect(await storage.records(work.sql)).toEqual([]);

      await work.sql.begin((tx) => storage.logMigration({ context: { sql: tx, migration: first, startedAt: performance.now() } }));
      const [record] = await storage.records(db.sql);
      expect(record).toMatchObject({ version: 1, name: "001_first", checksum: first.checksum, status: "applied", transactional: true, appliedBy: "contract test" });
      expect(record!.appliedAt).toBeInstanceOf(Date);
      expect(record!.executionMs).toBeGreaterThanOrEqual(0);
    });

    test("an applied row is never overwritten: logMigration refuses, and no other transition touches it", async () => {
      const { work, storage, first } = await storageOn();
      await storage.ensureTable(work.sql);
      const context = { sql: work.sql, migration: first, startedAt: performance.now() };
      await storage.logMigration({ context });
      const [applied] = await storage.records(work.sql);

      await expect(storage.logMigration({ context })).rejects.toThrow("001_first.sql is already recorded as applied by another run");
      await storage.recordRunning(work.sql, first);
      await storage.recordFailed(work.sql, first, "a failure that never happened");
      await storage.recordHeld(work.sql, first);
      expect(await storage.recordApplied(work.sql, first)).toBe(0);
      expect(await storage.recordRolledBack(work.sql, first)).toBe(0);
      expect(await storage.records(work.sql)).toEqual([applied!]);
    });

    test("a no-transaction file's row: running, then failed with its error masked, then applied (resolve --applied) or held for a retry (--rolled-back)", async () => {
      const { work, storage, first, second } = await storageOn();
      await storage.ensureTable(work.sql);
      for (const file of [first, second]) {
        await storage.recordRunning(work.sql, file);
        await storage.recordFailed(work.sql, file, `connect to postgres:${TEST_PASSWORD}@db failed`);
      }
      const failed = byVersion(await storage.records(work.sql));
      expect([failed.get(1)!.status, failed.get(2)!.status]).toEqual(["failed", "failed"]);
      expect(failed.get(2)!.lastError).toBe("connect to postgres:********@db failed");
      expect(failed.get(2)!.appliedAt).toBeNull();

      expect(await storage.recordApplied(work.sql, first)).toBe(1);
      expect(await storage.recordRolledBack(work.sql, second)).toBe(1);
      const resolved = byVersion(await storage.records(work.sql));
      expect(resolved.get(1)).toMatchObject({ status: "applied", lastError: null });
      expect(resolved.get(1)!.appliedAt).toBeInstanceOf(Date);
      expect(resolved.get(2)).toMatchObject({ status: "held", holdReason: "rolled back by resolve; retried on the next run" });

      // A held row only starts running again: it cannot be marked failed without having run.
      await storage.recordFailed(work.sql, second, "not running");
      expect(byVersion(await storage.records(work.sql)).get(2)!.status).toBe("held");
      await storage.recordRunning(work.sql, second);
      expect(byVersion(await storage.records(work.sql)).get(2)!.status).toBe("running");
    });

    test("executed lists applied migrations only, in version order; unlogMigration removes one", async () => {
      const { work, storage, first, second, third } = await storageOn();
      await storage.ensureTable(work.sql);
      const log = (migration: MigrationFile) => storage.logMigration({ context: { sql: work.sql, migration, startedAt: performance.now() } });
      await log(third);
      await log(first);
      await storage.recordHeld(work.sql, second);
      const context = { sql: work.sql, migration: first, startedAt: performance.now() };
      expect(await storage.executed()).toEqual(["001_first", "003_third"]);
      await storage.unlogMigration({ context: { ...context, migration: third } });
      expect(await storage.executed()).toEqual(["001_first"]);
      expect((await storage.records(work.sql)).map((record) => [record.version, record.status])).toEqual([
        [1, "applied"],
        [2, "held"],
      ]);
    });
  });
}

/* The lock contract. */

describe("lock contract: withMigrationLock", () => {
  test("a second session waits while the first holds the lock, and takes it the moment it is released", async () => {
    const db = await server.fresh();
    const { logger, events } = recordingLogger(db);
    const [first, second] = [await jobSession(db, "lock", logger), await jobSession(db, "lock", logger)];
    const order: string[] = [];
    const letGo = letGoSignal();
    const holding = withMigrationLock(first, lockOptions(logger), async () => {
      order.push("first holds");
      await letGo.given;
      order.push("first releases");
    });
    await eventually("the first session to hold the lock", async () => (order.includes("first holds") ? true : undefined));
    const waiting = withMigrationLock(second, lockOptions(logger), async () => void order.push("second holds"));
    await eventually("the second session to queue for the lock", async () => ((await queuedForTheLock(db)).includes(second.pid) ? true : undefined));
    expect(order).toEqual(["first holds"]);

    letGo.give();
    await Promise.all([holding, waiting]);
    expect(order).toEqual(["first holds", "first releases", "second holds"]);
    expect(events.find((e) => e.event === "lock_waiting")).toMatchObject({ holder_pid: first.pid, holder_application: "studio-migrate" });
    expect(events.filter((e) => e.event === "lock_acquired").map((e) => (e.waited_ms as number) > 0)).toEqual([false, true]);
    expect(await lockHolders(db)).toEqual([]);
  });

  test("the wait is bounded: past waitMs it gives up with exit 3 naming the holder, who keeps the lock", async () => {
    const db = await server.fresh();
    const { logger } = recordingLogger(db);
    const [first, second] = [await jobSession(db, "lock", logger), await jobSession(db, "lock", logger)];
    const letGo = letGoSignal();
    const holding = withMigrationLock(first, lockOptions(logger), () => letGo.given);
    await eventually("the first session to hold the lock", async () => ((await lockHolders(db)).includes(first.pid) ? true : undefined));
    let ran = false;
    const error = await withMigrationLock(second, lockOptions(logger, 300), async () => void (ran = true)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect((error as DatabaseUnavailableError).exitCode).toBe(3);
    expect((error as Error).message).toContain(`the migration lock was not acquired within 300 ms (MIGRATE_LOCK_WAIT): it is held by pid ${first.pid} "studio-migrate"`);
    expect(ran).toBe(false);
    expect(await lockHolders(db)).toEqual([first.pid]);
    letGo.give();
    await holding;
  });

  test("released whatever the body does: its error comes out, and the lock is free", async () => {
    const db = await server.fresh();
    const { logger } = recordingLogger(db);
    const session = await jobSession(db, "lock", logger);
    const failing = withMigrationLock(session, lockOptions(logger), async () => {
      expect(await lockHolders(db)).toEqual([session.pid]);
      throw new Error("the body failed");
    });
    await expect(failing).rejects.toThrow("the body failed");
    expect(await lockHolders(db)).toEqual([]);
  });

  test("a session that holds the lock already (another client sharing its server session) is refused, and nothing is released", async () => {
    const db = await server.fresh();
    const { logger } = recordingLogger(db);
    const session = await jobSession(db, "lock", logger);
    await session.sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY}::bigint)`;
    let ran = false;
    const error = await withMigrationLock(session, lockOptions(logger), async () => void (ran = true)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect((error as Error).message).toContain(`this connection's server session (pid ${session.pid}) already held the migration lock before this run asked for it`);
    expect(ran).toBe(false);
    expect(await lockHolders(db)).toEqual([session.pid]);
  });

  test("assertHeld passes while the lock's session holds it, and fails once that session is gone", async () => {
    const db = await server.fresh();
    const { logger } = recordingLogger(db);
    const session = await jobSession(db, "lock", logger);
    const outcome = withMigrationLock(session, lockOptions(logger), async (lock: HeldLock) => {
      await lock.assertHeld(db.sql);
      const [terminated] = await db.sql<{ done: boolean }[]>`select pg_terminate_backend(${session.pid}, 5000) as done`;
      expect(terminated!.done).toBe(true);
      await lock.assertHeld(db.sql);
    });
    await expect(outcome).rejects.toBeInstanceOf(RunAbortedError);
    await expect(outcome).rejects.toThrow(`the migration lock was lost (its connection, pid ${session.pid}, closed)`);
  });
});

/* The runner contract: the same promises for a SQL file and a TypeScript one. */

const LEDGER = { "001_ledger.sql": "create table ledger (version int, note text);\n" };

const LANGUAGES = [
  {
    language: "SQL",
    file: (name: string, statements: readonly string[]) => ({ [`${name}.sql`]: statements.map((statement) => `${statement};\n`).join("") }),
  },
  {
    language: "TypeScript",
    file: (name: string, statements: readonly string[]) => ({
      [`${name}.ts`]: `export async function up(sql) {\n${statements.map((statement) => `  await sql.unsafe(${JSON.stringify(statement)});\n`).join("")}}\n`,
    }),
  },
] as const;

/** One runner as the job builds one: a lock session, a migration session and the storage. */
async function jobRunner(db: TestDatabase) {
  const config = jobConfig(db);
  const { logger, events } = recordingLogger(db);
  const [lockSession, work] = [await jobSession(db, "lock", logger), await jobSession(db, "migration", logger)];
  const storage = new MigrationStorage(config.table, { appliedBy: "contract test", deploymentId: undefined, gitCommit: undefined, environment: undefined }, redactorFor(db.url));
  const deps = (lock: HeldLock): RunnerDeps => ({
    loadParser: loadSqlParser,
    sql: work.sql,
    work,
    lock,
    monitor: { sql: lockSession.sql, workPid: work.pid },
    storage,
    logger,
    policy: config.policy,
    signal: new AbortController().signal,
    events: runEvents([]),
  });
  /** As every locked command does: the state is read only once the lock is held. */
  const up = (files: readonly MigrationFile[]) =>
    withMigrationLock(lockSession, lockOptions(logger), async (lock) => {
      await storage.ensureTable(work.sql);
      const applied = new Set((await storage.records(work.sql)).filter((record) => record.status === "applied").map((record) => record.version));
      const plans = await planMigrations(files.filter((file) => !applied.has(file.version)), await loadSqlParser());
      return applyMigrations(plans, deps(lock));
    });
  /** Applies `files` as planned, without reading what is applied: a runner working from a stale plan. */
  const applyAsPlanned = (files: readonly MigrationFile[]) =>
    withMigrationLock(lockSession, lockOptions(logger), async (lock) => applyMigrations(await planMigrations(files, await loadSqlParser()), deps(lock)));
  return { lockSession, work, storage, events, up, applyAsPlanned };
}

for (const { language, file } of LANGUAGES) {
  describe(`runner contract: a ${language} migration`, () => {
    test("is recorded in its own transaction: the tracking row and the migration's writes share one transaction id", async () => {
      const db = await server.fresh();
      const runner = await jobRunner(db);
      const files = await migrationFiles({ ...LEDGER, ...file("002_note", ["insert into ledger values (2, 'written by 002')", "create table noted (id int)"]) });
      expect(await runner.up(files)).toBe(2);
      const [written] = await db.sql<{ xmin: string }[]>`select xmin::text from ledger where version = 2`;
      const records = await db.sql<{ version: string; xmin: string }[]>`select version, xmin::text from platform.schema_migrations order by version`;
      expect(records.map((row) => Number(row.version))).toEqual([1, 2]);
      expect(records[1]!.xmin).toBe(written!.xmin);
      expect(records[0]!.xmin).not.toBe(written!.xmin);
      expect(await tableExists(db.sql, "noted")).toBe(true);
    });

    test("that fails after some of its work leaves neither that work nor a record", async () => {
      const db = await server.fresh();
      const runner = await jobRunner(db);
      const files = await migrationFiles({ ...LEDGER, ...file("002_half", ["create table half (id int)", "insert into ledger values (2, 'half')", "insert into no_such_table values (1)"]) });
      await expect(runner.up(files)).rejects.toThrow("no_such_table");
      expect(await tableExists(db.sql, "half")).toBe(false);
      expect(await db.sql`select * from ledger`).toHaveLength(0);
      expect(await trackedStatuses(db.sql)).toEqual({ "001_ledger": "applied" });
    });

    test("whose lock is lost before it commits commits nothing, and the run stops naming the lock", async () => {
      const db = await server.fresh();
      const runner = await jobRunner(db);
      // The migration itself ends the lock's session: the lock is gone between its work and its commit.
      const files = await migrationFiles({
        ...LEDGER,
        ...file("002_loses_lock", ["create table lost_work (id int)", `select pg_terminate_backend(${runner.lockSession.pid}, 5000)`]),
      });
      await expect(runner.up(files)).rejects.toThrow(`the migration lock was lost (its connection, pid ${runner.lockSession.pid}, closed)`);
      expect(await tableExists(db.sql, "lost_work")).toBe(false);
      expect(await trackedStatuses(db.sql)).toEqual({ "001_ledger": "applied" });
    });
  });
}

describe("runner contract: inLockedTransaction", () => {
  test("commits the body while the lock is held, then puts the session back as it was established", async () => {
    const db = await server.fresh();
    const runner = await jobRunner(db);
    const [before] = await runner.work.sql<{ lock_timeout: string }[]>`select current_setting('lock_timeout') as lock_timeout`;
    await withMigrationLock(runner.lockSession, lockOptions(recordingLogger(db).logger), (lock) =>
      inLockedTransaction({ work: runner.work, lock }, async (tx) => {
        await tx`create table committed_body (id int)`;
        await tx`set lock_timeout = '42s'`;
        await tx`select set_config('lock_timeout', '43s', false)`;
      }),
    );
    expect(await tableExists(db.sql, "committed_body")).toBe(true);
    const [after] = await runner.work.sql<{ lock_timeout: string }[]>`select current_setting('lock_timeout') as lock_timeout`;
    expect(after!.lock_timeout).toBe(before!.lock_timeout);
  });
});

describe("runner contract: concurrent runners", () => {
  const COUNT = 12;
  /** Each migration adds its version to the ledger, so one applied twice shows as a duplicate. */
  function ledgerMigrations(): Record<string, string> {
    const files: Record<string, string> = { ...LEDGER };
    for (let version = 2; version <= COUNT; version++) {
      const id = String(version).padStart(3, "0");
      files[`${id}_entry_${id}.sql`] = `insert into ledger values (${version}, 'entry');\nselect pg_sleep(0.01);\n`;
    }
    return files;
  }

  test("two runners racing apply each migration once: one applies them all, the one that waited finds nothing to do", async () => {
    const db = await server.fresh();
    const files = await migrationFiles(ledgerMigrations());
    const [one, two] = [await jobRunner(db), await jobRunner(db)];
    const applied = await Promise.all([one.up(files), two.up(files)]);
    expect(applied.toSorted((a, b) => a - b)).toEqual([0, COUNT]);
    const [ledger] = await db.sql<{ rows: number; versions: number }[]>`select count(*)::int as rows, count(distinct version)::int as versions from ledger`;
    expect(ledger).toEqual({ rows: COUNT - 1, versions: COUNT - 1 });
    expect(Object.values(await trackedStatuses(db.sql))).toEqual(Array(COUNT).fill("applied"));
    // The runner that waited did so in the lock's queue, naming the other runner's lock session.
    const waited = [one, two].find((runner) => runner.events.some((e) => e.event === "lock_waiting"))!;
    const other = waited === one ? two : one;
    expect(waited.events.find((e) => e.event === "lock_waiting")!.holder_pid).toBe(other.lockSession.pid);
  });

  test("a runner working from a stale plan cannot apply a migration twice: the record refuses, and its work rolls back with it", async () => {
    const db = await server.fresh();
    const files = await migrationFiles({ ...LEDGER, "002_entry.sql": "insert into ledger values (2, 'entry');\n" });
    const [first, stale] = [await jobRunner(db), await jobRunner(db)];
    expect(await first.up(files)).toBe(2);
    await expect(stale.applyAsPlanned(files.slice(1))).rejects.toThrow("002_entry.sql is already recorded as applied by another run");
    expect((await db.sql`select version from ledger`).map((row) => row.version)).toEqual([2]);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_ledger": "applied", "002_entry": "applied" });
  });
});

describe("values written into the statement text", () => {
  const HOSTILE = ["it's", "back\\slash", "\\'; drop table victims; --", "$$ dollar $$", "ünï©ødé 🚀", "line\nbreak\r\ttab", "E'x'", "", "\\x41\\u0041", "''''"];

  test("come back exactly as written, whatever standard_conforming_strings says", async () => {
    const db = await server.fresh();
    await db.sql`create table victims (id int)`;
    for (const setting of ["on", "off"]) {
      await db.sql.begin(async (tx) => {
        await tx.unsafe(`set local standard_conforming_strings = ${setting}`);
        for (const value of HOSTILE) {
          const [row] = await inlined(tx)<{ text: string; number: number; negative: number; nothing: null; yes: boolean; big: string }[]>`
            select ${value}::text as text, ${42} as number, ${-3}::int as negative, ${null}::text as nothing, ${true} as yes, ${123456789012345678n}::text as big`;
          expect(row).toEqual({ text: value, number: 42, negative: -3, nothing: null, yes: true, big: "123456789012345678" });
        }
      });
    }
    expect(await tableExists(db.sql, "victims")).toBe(true);
  });

  test("refuse what PostgreSQL could not hold, and leave identifiers to sql(name)", async () => {
    expect(() => sqlLiteral("a\u0000b")).toThrow("NUL");
    expect(() => sqlLiteral(Number.NaN)).toThrow("not a finite number");
    expect(() => sqlLiteral(Number.POSITIVE_INFINITY)).toThrow("not a finite number");
    const db = await server.fresh();
    const [row] = await inlined(db.sql)<{ oid: number }[]>`select oid::int from ${db.sql("pg_catalog")}.${db.sql("pg_class")} where relname = ${"pg_class"}`;
    expect(row!.oid).toBe(1259);
  });
});
