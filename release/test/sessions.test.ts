/**
 * The sessions the job runs on are the job's own: a session lost under it is never silently
 * replaced, every file starts from the same session state whatever earlier files set, and a file
 * whose work escapes the job's transaction is reported as what it is.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { watchBothStreams } from "./support/watch-output.ts";
import { tableExists, trackedStatuses, lastRun } from "./support/catalog.ts";
import { eventually } from "./support/eventually.ts";
import { startTcpProxy } from "./support/tcp-proxy.ts";

const LOCK_KEY = "6004517954967784775";

const server = useTestServer();

/** The job's settings as a migration sees them; MIGRATE_LOCK_TIMEOUT differs from the server's default 0. */
const JOB_ENV = { MIGRATE_LOCK_TIMEOUT: "3s", MIGRATE_STATEMENT_TIMEOUT: "7min" };
const SEEN_TABLE = "create table public.seen (file text, lock_timeout text, statement_timeout text, search_path text, replication_role text, who text, read_only text);\n";
const recordSeen = (file: string) =>
  `insert into public.seen values ('${file}', current_setting('lock_timeout'), current_setting('statement_timeout'), current_setting('search_path'), ` +
  `current_setting('session_replication_role'), current_user, current_setting('default_transaction_read_only'));\n`;
const AS_THE_JOB_SET_IT = { lock_timeout: "3s", statement_timeout: "7min", search_path: '"$user", public', replication_role: "origin", who: "postgres", read_only: "off" };

/** A session of the test's that holds the migration lock, immune to the database's idle_session_timeout. */
async function holdMigrationLock(db: TestDatabase) {
  const holder = postgres(db.url, { max: 1, connection: { application_name: "test-holder" }, onnotice: () => undefined });
  await holder`select set_config('idle_session_timeout', '0', false), pg_advisory_lock(${LOCK_KEY}::bigint)`;
  return holder;
}

/** The job's one session while the run waits for the lock: the lock's session, in the lock queue. */
function waitingJobSession(db: TestDatabase) {
  return eventually("the job's session waiting for the migration lock", async () => {
    const [row] = await db.sql<{ pid: number }[]>`
      select pid from pg_stat_activity where application_name = 'studio-migrate' and wait_event_type = 'Lock' and wait_event = 'advisory'`;
    return row?.pid;
  });
}

/** Rows as plain objects, to compare with toEqual. */
async function rowsOf(query: Promise<readonly object[]>): Promise<object[]> {
  return [...(await query)];
}

describe("a session lost under the job", () => {
  test("idle_session_timeout on the database never ends the job's sessions: idle through a retry's back-off, the run applies with its own settings", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_seen.sql": SEEN_TABLE });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    // Shorter than the back-off before a retry (at least 500 ms), during which both of the job's sessions are idle.
    await db.sql.unsafe(`alter database ${db.name} set idle_session_timeout = '250ms'`);
    const holder = postgres(db.url, { max: 1, connection: { idle_session_timeout: 0 }, onnotice: () => undefined });
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    const { promise: locked, resolve: lockTaken } = Promise.withResolvers<void>();
    const holding = holder.begin(async (tx) => {
      await tx`lock table public.seen in access exclusive mode`;
      lockTaken();
      await released;
    });
    await locked;
    await Bun.write(`${dir}/002_second.sql`, recordSeen("002"));
    const run = watchBothStreams([], { url: db.url, migrationsDir: dir, env: { ...JOB_ENV, MIGRATE_LOCK_TIMEOUT: "300ms" } });
    // Warnings go to stderr, as Railway files them.
    await run.until("stderr", (stderr) => stderr.includes('"migration_retry"'));
    release();
    await holding;
    await holder.end();
    const result = await run.result();
    expect(result.code).toBe(0);
    expect(await rowsOf(db.sql`select file, lock_timeout, statement_timeout from public.seen`)).toEqual([{ file: "002", lock_timeout: "300ms", statement_timeout: "7min" }]);
  });

  test("the lock's session terminated while the run waits for the lock: the run stops, applies nothing, and the history says why", async () => {
    const db = await server.fresh();
    const setup = await migrationsFolder({ "001_seen.sql": SEEN_TABLE });
    expect((await runMain([], { url: db.url, migrationsDir: setup })).code).toBe(0);
    await Bun.write(`${setup}/002_second.sql`, recordSeen("002"));
    const holder = await holdMigrationLock(db);
    const run = watchBothStreams([], { url: db.url, migrationsDir: setup, env: JOB_ENV });
    await run.until("stdout", (stdout) => stdout.includes('"lock_waiting"'));
    const lockPid = await waitingJobSession(db);
    const [terminated] = await db.sql`select pg_terminate_backend(${lockPid}, 5000) as done`;
    expect(terminated!.done).toBe(true);
    await holder.end();
    const result = await run.result();
    expect(result.code).toBe(1);
    expect(failure(result)).toMatchObject({ error: "session_lost", pid: lockPid, session: "lock" });
    expect(failure(result).message).toContain(`the lock session (pid ${lockPid}) was closed`);
    expect(await rowsOf(db.sql`select file from public.seen`)).toEqual([]);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_seen": "applied" });
    const recorded = await lastRun(db.sql);
    expect(recorded!.outcome).toBe("failed");
    expect(recorded!.error_message).toContain(`pid ${lockPid}) was closed`);
    // Nothing of the job is left on the server, in a lock queue or elsewhere.
    await eventually("the job's sessions to be gone", async () => {
      const rows = await db.sql`select pid from pg_stat_activity where application_name = 'studio-migrate'`;
      return rows.length === 0 ? true : undefined;
    });
    const rerun = await runMain([], { url: db.url, migrationsDir: setup, env: JOB_ENV });
    expect(rerun.code).toBe(0);
    expect(await rowsOf(db.sql`select file, lock_timeout from public.seen`)).toEqual([{ file: "002", lock_timeout: "3s" }]);
  });
});

/** SETs a file pasted from pg_dump (or written carelessly) leaves behind. */
const LEAKY_SETS =
  "set session_replication_role = replica;\nreset lock_timeout;\nset statement_timeout = 0;\nset search_path = app, public;\n" +
  "set role app_owner;\nset default_transaction_read_only = on;\n";
// Roles belong to the whole server, which every test's database shares.
const ROLES =
  "create schema app;\ndo $$ begin create role app_owner; exception when duplicate_object then null; end $$;\n" +
  "grant create, usage on schema app, public to app_owner;\n";

function leakFiles(mode: "" | "-- migrate:no-transaction\n"): Record<string, string> {
  return {
    "001_setup.sql": SEEN_TABLE + ROLES + "grant insert on public.seen to app_owner;\n",
    "002_leaky.sql": `${mode}create table public.leaky_marker (id int);\n${LEAKY_SETS}`,
    "003_after.sql": `${mode}${recordSeen("003")}create table widgets (id int);\n`,
  };
}

async function widgetsPlacement(db: TestDatabase) {
  return db.sql`select n.nspname as schema, pg_get_userbyid(c.relowner) as owner
    from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relname = 'widgets'`;
}

describe("every file starts from the same session state", () => {
  for (const [label, mode] of [
    ["in transactions", ""],
    ["without transactions", "-- migrate:no-transaction\n"],
  ] as const) {
    test(`a file's SET, SET ROLE, search_path and read-only mode do not reach the next file or the job's records (${label})`, async () => {
      const db = await server.fresh();
      const result = await runMain([], { url: db.url, migrationsDir: await migrationsFolder(leakFiles(mode)), env: JOB_ENV });
      expect(result.code).toBe(0);
      const [seen] = await db.sql`select lock_timeout, statement_timeout, search_path, replication_role, who, read_only from public.seen`;
      expect(seen).toEqual(AS_THE_JOB_SET_IT);
      expect(await rowsOf(widgetsPlacement(db))).toEqual([{ schema: "public", owner: "postgres" }]);
      // The records were written as the job's own role, not app_owner, though 002 ended on SET ROLE.
      expect(await trackedStatuses(db.sql)).toEqual({ "001_setup": "applied", "002_leaky": "applied", "003_after": "applied" });
    });
  }

  test("the schema does not depend on how files were batched into deploys", async () => {
    const files = leakFiles("");
    const together = await server.fresh();
    expect((await runMain([], { url: together.url, migrationsDir: await migrationsFolder(files), env: JOB_ENV })).code).toBe(0);
    const apart = await server.fresh();
    const dir = await migrationsFolder({});
    for (const [name, text] of Object.entries(files)) {
      await Bun.write(`${dir}/${name}`, text);
      expect((await runMain([], { url: apart.url, migrationsDir: dir, env: JOB_ENV })).code).toBe(0);
    }
    const picture = async (db: TestDatabase) => ({ widgets: await rowsOf(widgetsPlacement(db)), seen: await rowsOf(db.sql`select * from public.seen`) });
    expect(await picture(together)).toEqual(await picture(apart));
  });
});

describe("a no-transaction file that leaves a transaction open", () => {
  const cases = {
    "COMMIT AND CHAIN last": { text: "begin;\ncreate table widgets (id int);\ncommit and chain;\ninsert into widgets values (1);\n", line: 4, statement: "commit and chain" },
    "BEGIN never committed": { text: "create table widgets (id int);\nbegin;\ninsert into widgets values (1);\n", line: 3, statement: "begin" },
    "ROLLBACK AND CHAIN last": { text: "begin;\ncreate table widgets (id int);\nrollback and chain;\n", line: 4, statement: "rollback and chain" },
  };
  for (const [label, { text, line, statement }] of Object.entries(cases)) {
    test(`is refused before anything runs, naming the line (${label})`, async () => {
      const db = await server.fresh();
      const dir = await migrationsFolder({ "001_first.sql": "create table first (id int);\n", "002_open.sql": `-- migrate:no-transaction\n${text}` });
      // The lint gate relaxed to warnings does not let it through: this is not a lint finding.
      const result = await runMain([], { url: db.url, migrationsDir: dir, env: { MIGRATE_LINT: "warn" } });
      expect(result.code).toBe(4);
      expect(failure(result).message).toContain(`002_open.sql:${line}: "${statement}" leaves a transaction open at the end of the file`);
      expect(await tableExists(db.sql, "first")).toBe(false);
      expect(await tableExists(db.sql, "widgets")).toBe(false);
      const plan = await runMain(["plan"], { url: db.url, migrationsDir: dir });
      expect(plan.code).toBe(4);
    });
  }

  test("a file that commits its own transaction applies; PREPARE TRANSACTION is refused", async () => {
    const db = await server.fresh();
    const own = "-- migrate:no-transaction\nbegin;\ncreate table widgets (id int);\ninsert into widgets values (1);\ncommit;\n";
    const ok = await runMain([], { url: db.url, migrationsDir: await migrationsFolder({ "001_own.sql": own }) });
    expect(ok.code).toBe(0);
    expect(await rowsOf(db.sql`select id from widgets`)).toEqual([{ id: 1 }]);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_own": "applied" });
    const prepared = "-- migrate:no-transaction\nbegin;\ncreate table gadgets (id int);\nprepare transaction 'left_behind';\n";
    const refused = await runMain([], { url: db.url, migrationsDir: await migrationsFolder({ "001_own.sql": own, "002_prepared.sql": prepared }), env: { MIGRATE_LINT: "warn" } });
    expect(refused.code).toBe(4);
    expect(failure(refused).message).toContain("002_prepared.sql:4:");
    expect(failure(refused).message).toContain("prepared transaction");
    expect(await rowsOf(db.sql`select gid from pg_prepared_xacts`)).toEqual([]);
  });
});

describe("a TypeScript migration whose work escapes the job's transaction", () => {
  const table = "create table ledger (id int primary key);\n";
  const escapes = {
    "COMMIT, more work, then a throw": `export async function up(sql) {
  await sql\`insert into ledger values (1)\`;
  await sql\`insert into ledger values (2)\`;
  await sql.unsafe("commit");
  await sql\`insert into ledger values (3)\`;
  throw new Error("boom after the commit");
}
`,
    "COMMIT, then a normal return": `export async function up(sql) {
  await sql\`insert into ledger values (1)\`;
  await sql.unsafe("commit");
}
`,
    "ROLLBACK, then work that autocommits": `export async function up(sql) {
  await sql\`insert into ledger values (1)\`;
  await sql.unsafe("rollback");
  await sql\`insert into ledger values (2)\`;
}
`,
  };
  for (const [label, module] of Object.entries(escapes)) {
    test(`is reported as escaped, recorded as failed, and later runs refuse until resolve (${label})`, async () => {
      const db = await server.fresh();
      const dir = await migrationsFolder({ "001_ledger.sql": table, "002_fill.ts": module, "003_after.sql": "create table after_fill (id int);\n" });
      const result = await runMain([], { url: db.url, migrationsDir: dir });
      expect(result.code).toBe(1);
      const { message, error } = failure(result);
      expect(error).toBe("transaction_escaped");
      expect(message).toContain("002_fill.ts ended the job's transaction itself");
      expect(message).toContain("committed outside the job's transaction");
      expect(message).not.toContain("nothing from 002_fill.ts was applied");
      expect(await trackedStatuses(db.sql)).toEqual({ "001_ledger": "applied", "002_fill": "failed" });
      expect(await tableExists(db.sql, "after_fill")).toBe(false);
      const again = await runMain([], { url: db.url, migrationsDir: dir });
      expect(again.code).toBe(4);
      expect(failure(again).message).toContain("resolve 2 --applied");
      const resolved = await runMain(["resolve", "2", "--applied"], { url: db.url, migrationsDir: dir });
      expect(resolved.code).toBe(0);
      expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
      expect(await tableExists(db.sql, "after_fill")).toBe(true);
    });
  }
});

describe("a network reset", () => {
  test("the job's connection cut while the run waits for the lock: it stops, applies nothing, and its history row is completed through a new session", async () => {
    const db = await server.fresh();
    const setup = await migrationsFolder({ "001_seen.sql": SEEN_TABLE });
    expect((await runMain([], { url: db.url, migrationsDir: setup })).code).toBe(0);
    await Bun.write(`${setup}/002_second.sql`, recordSeen("002"));
    const proxy = await startTcpProxy(server.port);
    const holder = await holdMigrationLock(db);
    try {
      const run = watchBothStreams([], { url: proxy.via(db.url), migrationsDir: setup, env: JOB_ENV });
      await run.until("stdout", (stdout) => stdout.includes('"lock_waiting"'));
      proxy.cut();
      const result = await run.result();
      expect(result.code).toBe(1);
      expect(failure(result)).toMatchObject({ error: "session_lost" });
      expect(await rowsOf(db.sql`select file from public.seen`)).toEqual([]);
      const recorded = await lastRun(db.sql);
      expect(recorded!.outcome).toBe("failed");
      expect(recorded!.error_message).toContain("was closed by the server or the network");
    } finally {
      await holder.end();
      proxy.stop();
    }
  });
});

describe("connections", () => {
  test("a deploy with nothing to apply connects once; one with work to do opens the migration session as well", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_seen.sql": SEEN_TABLE });
    const proxy = await startTcpProxy(server.port);
    try {
      const through = (args: string[] = []) => runMain(args, { url: proxy.via(db.url), migrationsDir: dir, env: JOB_ENV });
      expect((await through()).code).toBe(0);
      expect(proxy.accepted).toBe(2);
      expect((await through()).code).toBe(0);
      expect(proxy.accepted).toBe(3);
      await Bun.write(`${dir}/002_second.sql`, recordSeen("002"));
      expect((await through()).code).toBe(0);
      expect(proxy.accepted).toBe(5);
      expect((await through(["status"])).code).toBe(0);
      expect(proxy.accepted).toBe(6);
    } finally {
      proxy.stop();
    }
  });

  test("a folder refused while the job connects leaves the database as it was, with no session of the job left", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_seen.sql": SEEN_TABLE, "002_Not_Snake.sql": "select 1;\n" });
    const result = await runMain([], { url: db.url, migrationsDir: dir, env: JOB_ENV });
    expect(result.code).toBe(4);
    expect(failure(result).message).toContain("002_Not_Snake.sql");
    expect(result.events.filter((event) => event.event === "run_started")).toEqual([]);
    expect(await tableExists(db.sql, "platform.schema_migrations_runs")).toBe(false);
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);
    const [left] = await db.sql<{ count: number }[]>`select count(*)::int as count from pg_stat_activity where application_name = 'studio-migrate'`;
    expect(left!.count).toBe(0);
  });
});
