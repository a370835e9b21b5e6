/**
 * Connection poolers, against a real PgBouncer: the job refuses any run through one at connect
 * time (exit 3), before it takes the lock or changes anything, in transaction and session mode
 * alike, and leaves no lock behind. The lock refuses a server session shared with another client.
 *
 * The transaction-mode PgBouncer keeps one server connection per database, so every client shares
 * one server session: the situation that defeated the lock, made certain rather than likely.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { DatabaseUnavailableError } from "../src/shared/errors.ts";
import { MIGRATION_LOCK_KEY, withMigrationLock } from "../src/database/lock.ts";
import { openSession, closeSession } from "../src/database/database.ts";
import { createLogger } from "../src/shared/log.ts";
import { useTestServer, type TestDatabase } from "./support/postgres.ts";
import { usePgBouncer } from "./support/pgbouncer.ts";
import { failure, migrationsFolder, runMigrate, type RunResult } from "./support/run-migrate.ts";
import { catalogPicture, tableExists } from "./support/catalog.ts";

const server = useTestServer();
const transactionPooler = usePgBouncer(server, { poolMode: "transaction", poolSize: 1 });
// Drops the job's session settings rather than refusing them, as a pooler set up for other clients might.
const sessionPooler = usePgBouncer(server, {
  poolMode: "session",
  ignoreStartupParameters: ["lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout", "idle_session_timeout"],
});

const MIGRATIONS = { "001_accounts.sql": "create table accounts (id bigint primary key);\n" };

/** Every advisory lock granted in the test database, seen directly (never through the pooler). */
async function advisoryLocks(db: TestDatabase): Promise<{ pid: number }[]> {
  return [
    ...(await db.sql<{ pid: number }[]>`
      select l.pid from pg_locks l join pg_database d on d.oid = l.database
      where l.locktype = 'advisory' and l.granted and d.datname = ${db.name}`),
  ];
}

/** The server sessions PgBouncer keeps open to the test database for the job's clients. */
async function pooledJobSessions(db: TestDatabase): Promise<number> {
  const [row] = await db.sql<{ count: number }[]>`
    select count(*)::int as count from pg_stat_activity where datname = ${db.name} and application_name like 'studio-migrate%'`;
  return row!.count;
}

function expectPoolerRefusal(result: RunResult, poolerPort: number): void {
  expect(result.code).toBe(3);
  const error = failure(result);
  expect(error).toMatchObject({ code: "POOLER_DETECTED", error: "database_unavailable", exit_code: 3 });
  expect(error.message).toContain(`127.0.0.1:${poolerPort} is a connection pooler`);
  expect(error.message).toContain("the migration lock cannot be held through it");
  expect(error.message).toContain("Point DATABASE_URL");
  expect(error.message).toContain("port 5432");
  expect(result.events.map((event) => event.event)).not.toContain("lock_acquired");
}

/** Nothing the job creates exists: no tracking or history table, no migration's objects, no lock. */
async function expectUntouched(db: TestDatabase, before: string): Promise<void> {
  expect(await catalogPicture(db.sql)).toBe(before);
  expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);
  expect(await tableExists(db.sql, "public.accounts")).toBe(false);
  expect(await advisoryLocks(db)).toEqual([]);
}

describe("through PgBouncer in transaction mode", () => {
  test("a lone up exits 3 naming the pooler and the direct URL to use; nothing is created and no lock remains", async () => {
    const db = await server.fresh();
    const before = await catalogPicture(db.sql);
    const result = await runMigrate([], { url: transactionPooler.urlFor(db.name), migrationsDir: await migrationsFolder(MIGRATIONS) });
    expectPoolerRefusal(result, transactionPooler.port);
    // PgBouncer refused the job's startup packet (its session settings), so no server session was ever opened for it.
    expect(failure(result).message).toContain("it refused the job's session settings (unsupported startup parameter");
    expect(await pooledJobSessions(db)).toBe(0);
    await expectUntouched(db, before);
  });

  test("status and plan refuse the same way", async () => {
    const db = await server.fresh();
    const before = await catalogPicture(db.sql);
    const migrationsDir = await migrationsFolder(MIGRATIONS);
    for (const command of ["status", "plan"]) {
      const result = await runMigrate([command], { url: transactionPooler.urlFor(db.name), migrationsDir });
      expectPoolerRefusal(result, transactionPooler.port);
    }
    await expectUntouched(db, before);
  });

  test("two concurrent ups both exit 3, nothing is applied, no lock remains; then a direct up applies", async () => {
    const db = await server.fresh();
    const before = await catalogPicture(db.sql);
    const migrationsDir = await migrationsFolder(MIGRATIONS);
    const concurrently = () => runMigrate([], { url: transactionPooler.urlFor(db.name), migrationsDir });
    const results = await Promise.all([concurrently(), concurrently()]);
    for (const result of results) expectPoolerRefusal(result, transactionPooler.port);
    await expectUntouched(db, before);

    const direct = await runMigrate([], { url: db.url, migrationsDir });
    expect(direct.code).toBe(0);
    expect(direct.events.find((event) => event.event === "migration_applied")?.migration).toBe("001_accounts");
    expect(await tableExists(db.sql, "public.accounts")).toBe(true);
    expect(await advisoryLocks(db)).toEqual([]);
  });

  test("the refused run sets nothing on the pooled server session: the next client gets its settings as they were", async () => {
    const db = await server.fresh();
    const defaults = "select current_setting('lock_timeout') as lock, current_setting('statement_timeout') as statement, current_setting('idle_in_transaction_session_timeout') as idle";
    const client = postgres(transactionPooler.urlFor(db.name), { max: 1, onnotice: () => undefined });
    try {
      const [expected] = await client.unsafe(defaults);
      const result = await runMigrate([], { url: transactionPooler.urlFor(db.name), migrationsDir: await migrationsFolder(MIGRATIONS) });
      expectPoolerRefusal(result, transactionPooler.port);
      // One server connection in the pool: this query runs on the very session the job's queries ran on.
      expect((await client.unsafe(defaults))[0]).toEqual(expected!);
    } finally {
      await client.end({ timeout: 1 });
    }
  });
});

describe("through PgBouncer in session mode", () => {
  test("up is refused too: a pooler is refused whatever its mode, and nothing is created", async () => {
    const db = await server.fresh();
    const before = await catalogPicture(db.sql);
    const result = await runMigrate([], { url: sessionPooler.urlFor(db.name), migrationsDir: await migrationsFolder(MIGRATIONS) });
    expectPoolerRefusal(result, sessionPooler.port);
    // This one let the job connect: the cancel key it announced gave it away.
    expect(failure(result).message).toMatch(/the connection announced backend pid \d+, but server session pid \d+ answered/);
    await expectUntouched(db, before);
  });
});

describe("the signal", () => {
  test("a direct connection announces its server session's own pid and is not flagged; PgBouncer announces another", async () => {
    const db = await server.fresh();
    const announcedAndServing = async (url: string) => {
      const client = postgres(url, { max: 1, onnotice: () => undefined });
      try {
        const result = await client<{ pid: number }[]>`select pg_backend_pid() as pid`;
        return { announced: result.state.pid, serving: result[0]!.pid };
      } finally {
        await client.end({ timeout: 1 });
      }
    };
    const direct = await announcedAndServing(db.url);
    expect(direct.announced).toBe(direct.serving);
    for (const url of [transactionPooler.urlFor(db.name), sessionPooler.urlFor(db.name)]) {
      const pooled = await announcedAndServing(url);
      expect(pooled.announced).not.toBe(pooled.serving);
    }

    const logger = createLogger("json", { stdout: () => undefined, stderr: () => undefined }, (line) => line);
    const session = await openSession({ url: db.url, connectTimeoutMs: 5_000, runner: { deploymentId: undefined, gitCommit: undefined, environment: undefined }, logger, onNotice: () => undefined });
    try {
      const [row] = await session.sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
      expect(session.pid).toBe(row!.pid);
    } finally {
      await closeSession(session);
    }
  });
});

describe("the lock on a shared server session", () => {
  test("a server session that already holds the lock for another client is refused: the lock is neither taken again nor released", async () => {
    const db = await server.fresh();
    // Another run's lock, on the pool's one server session.
    const otherRun = postgres(transactionPooler.urlFor(db.name), { max: 1, onnotice: () => undefined });
    const thisRun = postgres(transactionPooler.urlFor(db.name), { max: 1, onnotice: () => undefined });
    const logger = createLogger("json", { stdout: () => undefined, stderr: () => undefined }, (line) => line);
    try {
      await otherRun`select pg_advisory_lock(${MIGRATION_LOCK_KEY}::bigint)`;
      const [{ pid }] = (await thisRun`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      let bodyRan = false;
      const error = await withMigrationLock({ sql: thisRun, pid, lost: false }, { waitMs: 2_000, logger, signal: new AbortController().signal }, async () => {
        bodyRan = true;
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DatabaseUnavailableError);
      expect(error).toMatchObject({ exitCode: 3, code: "LOCK_HELD_BY_SHARED_SESSION" });
      expect((error as Error).message).toContain(`server session (pid ${pid}) already held the migration lock`);
      expect(bodyRan).toBe(false);
      // Still held, once: the other run's single unlock frees it.
      expect(await advisoryLocks(db)).toEqual([{ pid }]);
      const [{ released }] = (await otherRun`select pg_advisory_unlock(${MIGRATION_LOCK_KEY}::bigint) as released`) as unknown as [{ released: boolean }];
      expect(released).toBe(true);
      expect(await advisoryLocks(db)).toEqual([]);
    } finally {
      await Promise.all([otherRun.end({ timeout: 1 }), thisRun.end({ timeout: 1 })]);
    }
  });
});
