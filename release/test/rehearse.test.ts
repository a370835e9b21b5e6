/**
 * `rehearse`: pending migrations run for real in one transaction that is always rolled back. Every
 * test compares a detailed snapshot of the database before and after, through the job's main()
 * (or the job as a child process, where a test acts while the rehearsal waits on a lock).
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { schemaSnapshot } from "./support/schema-snapshot.ts";
import { tableExists } from "./support/catalog.ts";
import { watchBothStreams } from "./support/watch-output.ts";
import { eventually } from "./support/eventually.ts";

const server = useTestServer();

/** The `--json` document, as README.md documents it. */
const LockWaitSchema = z.strictObject({
  waited_ms: z.number().int().nonnegative(),
  lock_type: z.string(),
  mode: z.string(),
  relation: z.string().nullable(),
  blocking: z.array(z.strictObject({ pid: z.number().int(), application_name: z.string().nullable() })),
});
const RehearsalSchema = z.strictObject({
  rolled_back: z.literal(true),
  duration_ms: z.number().int().nonnegative(),
  migrations: z.array(
    z.strictObject({
      version: z.number().int(),
      name: z.string(),
      file: z.string(),
      outcome: z.enum(["passed", "failed", "not_rehearsable", "not_run", "held"]),
      duration_ms: z.number().int().nonnegative().nullable(),
      error: z
        .strictObject({
          file: z.string(),
          line: z.number().int().positive(),
          column: z.number().int().positive(),
          statement: z.string(),
          code: z.string(),
          message: z.string(),
          detail: z.string().nullable(),
          hint: z.string().nullable(),
          where: z.string().nullable(),
        })
        .nullable(),
      lock_waits: z.array(LockWaitSchema),
    }),
  ),
});
type Rehearsal = z.infer<typeof RehearsalSchema>;

/** With --json, stdout holds the document alone: every log line went to stderr. */
function rehearsalDocument(result: RunResult): Rehearsal {
  return RehearsalSchema.parse(JSON.parse(result.stdout));
}

function outcomes(rehearsal: Rehearsal): Record<string, string> {
  return Object.fromEntries(rehearsal.migrations.map((migration) => [migration.file, migration.outcome]));
}

const WIDGETS = "create table widgets (id int primary key, name text not null);\ninsert into widgets values (1, 'one');\n";

/** Three pending files that only work in order, one of them TypeScript; the last uses a sequence. */
const PENDING = {
  "002_add_widget_colour.sql":
    "alter table widgets add column colour text;\n" +
    "-- lint:allow require-concurrent-index-creation widgets is a one-row test table\n" +
    "create index widgets_colour_idx on widgets (colour);\n" +
    "create function widget_count() returns bigint language sql as $$ select count(*) from widgets $$;\n",
  "003_backfill_colour.ts":
    "export async function up(sql) {\n" +
    "  await sql`update widgets set colour = 'blue' where colour is null`;\n" +
    "  const [row] = await sql`select count(*)::int as blue, pg_sleep(0.03) from widgets where colour = 'blue'`;\n" +
    "  if (row.blue !== 1) throw new Error(`expected one blue widget, found ${row.blue}`);\n" +
    "}\n",
  "004_create_gadgets.sql":
    "create table gadgets (id serial primary key, widget_id int not null references widgets (id));\n" +
    "insert into gadgets (widget_id) select id from widgets;\n" +
    "comment on table gadgets is 'one per widget';\n",
};

/** A database where 001 is applied by `up`, and a folder where `pending` have been added since. */
async function appliedThenPending(pending: Record<string, string>): Promise<{ db: TestDatabase; dir: string }> {
  const db = await server.fresh();
  const dir = await migrationsFolder({ "001_create_widgets.sql": WIDGETS });
  expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
  await Promise.all(Object.entries(pending).map(([name, text]) => writeFile(join(dir, name), text)));
  return { db, dir };
}

/** Runs rehearse and checks the database is exactly as it was. */
async function rehearseUnchanged(db: TestDatabase, dir: string | undefined, args: string[] = ["--json"]): Promise<RunResult> {
  const before = await schemaSnapshot(db.sql);
  const result = await runMain(["rehearse", ...args], { url: db.url, ...(dir ? { migrationsDir: dir } : {}) });
  expect(await schemaSnapshot(db.sql)).toEqual(before);
  return result;
}

describe("rehearse", () => {
  test("all pending migrations pass: each is reported with its duration, and nothing is left behind", async () => {
    const { db, dir } = await appliedThenPending(PENDING);
    const result = await rehearseUnchanged(db, dir);
    expect(result.code).toBe(0);
    const rehearsal = rehearsalDocument(result);
    expect(rehearsal.migrations.map(({ duration_ms: _, ...rest }) => rest)).toEqual([
      { version: 2, name: "002_add_widget_colour", file: "002_add_widget_colour.sql", outcome: "passed", error: null, lock_waits: [] },
      { version: 3, name: "003_backfill_colour", file: "003_backfill_colour.ts", outcome: "passed", error: null, lock_waits: [] },
      { version: 4, name: "004_create_gadgets", file: "004_create_gadgets.sql", outcome: "passed", error: null, lock_waits: [] },
    ]);
    // 003 sleeps 30 ms inside its query: its reported duration includes it.
    expect(rehearsal.migrations[1]!.duration_ms).toBeGreaterThanOrEqual(30);
    for (const migration of rehearsal.migrations) expect(migration.duration_ms).toEqual(expect.any(Number));
    expect(result.events.filter((e) => e.event === "migration_rehearsed").map((e) => e.migration)).toEqual([
      "002_add_widget_colour",
      "003_backfill_colour",
      "004_create_gadgets",
    ]);
    expect(result.events.find((e) => e.event === "run_finished")).toMatchObject({ passed: 3, failed: 0, not_run: 0, not_rehearsable: 0, held: 0, rolled_back: true });

    // Nothing of the rehearsal is in the way of the real run.
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    expect([...(await db.sql`select id, colour from widgets`)]).toEqual([{ id: 1, colour: "blue" }]);
  });

  test("a failing migration: exit 1, file:line:column and SQLSTATE, later files not run, nothing changed", async () => {
    const failing = "-- 003: rename a widget\ninsert into widgets values (2, 'two');\nupdate widgets set name = 'uno' where nmae = 'one';\n";
    const { db, dir } = await appliedThenPending({
      "002_add_widget_colour.sql": PENDING["002_add_widget_colour.sql"],
      "003_rename_widget.sql": failing,
      "004_create_gadgets.sql": PENDING["004_create_gadgets.sql"],
    });
    const result = await rehearseUnchanged(db, dir);
    expect(result.code).toBe(1);
    const rehearsal = rehearsalDocument(result);
    expect(outcomes(rehearsal)).toEqual({ "002_add_widget_colour.sql": "passed", "003_rename_widget.sql": "failed", "004_create_gadgets.sql": "not_run" });
    const [, failed, notRun] = rehearsal.migrations;
    expect(failed!.error).toEqual({
      file: "003_rename_widget.sql",
      line: 3,
      column: "update widgets set name = 'uno' where ".length + 1,
      statement: "update widgets set name = 'uno' where nmae = 'one'",
      code: "42703",
      message: 'column "nmae" does not exist',
      detail: null,
      hint: 'Perhaps you meant to reference the column "widgets.name".',
      where: null,
    });
    expect(notRun).toMatchObject({ duration_ms: null, error: null, lock_waits: [] });
    expect(failure(result)).toMatchObject({ event: "migration_failed", file: "003_rename_widget.sql", line: 3, code: "42703" });
    expect(result.events.filter((e) => e.event === "migration_started").map((e) => e.migration)).toEqual(["002_add_widget_colour", "003_rename_widget"]);
    expect(await tableExists(db.sql, "gadgets")).toBe(false);
  });

  test("a no-transaction file is listed as not rehearsable; the files after it are still rehearsed", async () => {
    const { db, dir } = await appliedThenPending({
      "002_add_widget_colour.sql": PENDING["002_add_widget_colour.sql"],
      "003_index_names.sql": "-- migrate:no-transaction\ncreate index concurrently widgets_name_idx on widgets (name);\n",
      "004_create_gadgets.sql": PENDING["004_create_gadgets.sql"],
    });
    const result = await rehearseUnchanged(db, dir);
    expect(result.code).toBe(0);
    const rehearsal = rehearsalDocument(result);
    expect(outcomes(rehearsal)).toEqual({ "002_add_widget_colour.sql": "passed", "003_index_names.sql": "not_rehearsable", "004_create_gadgets.sql": "passed" });
    expect(rehearsal.migrations[1]).toMatchObject({ duration_ms: null, error: null, lock_waits: [] });
    expect(result.events.find((e) => e.event === "migration_not_rehearsable")).toMatchObject({ level: "warn", migration: "003_index_names" });
    const [index] = await db.sql`select to_regclass('widgets_name_idx') as index`;
    expect(index!.index).toBeNull();
  });

  test("a wait on a table lock is reported with how long it lasted and who blocked it", async () => {
    const { db, dir } = await appliedThenPending({ "002_add_widget_colour.sql": PENDING["002_add_widget_colour.sql"] });
    const before = await schemaSnapshot(db.sql);
    const holder = postgres(db.url, { max: 1, connection: { application_name: "rehearse-test-holder" }, onnotice: () => undefined });
    try {
      await holder`begin`;
      const [{ pid: holderPid }] = (await holder`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      await holder`lock table widgets in access exclusive mode`;

      const run = watchBothStreams(["rehearse", "--json"], { url: db.url, migrationsDir: dir });
      const waiting = await waitUntilBlocked(db);
      expect(waiting.blocking).toEqual([holderPid]);
      // The job's own watcher has seen the wait too, before it ends.
      await run.until("stderr", (stderr) => stderr.includes('"lock_wait_started"'));
      const [{ released_at: releasedAt }] = (await holder`select clock_timestamp() as released_at`) as unknown as [{ released_at: Date }];
      await holder`rollback`;

      const result = await run.result();
      expect(result.code).toBe(0);
      const [migration] = rehearsalDocument(result).migrations;
      expect(migration!.outcome).toBe("passed");
      expect(migration!.lock_waits).toEqual([
        {
          waited_ms: expect.any(Number),
          lock_type: "relation",
          mode: "AccessExclusiveLock",
          relation: "widgets",
          blocking: [{ pid: holderPid, application_name: "rehearse-test-holder" }],
        },
      ]);
      // It waited at least from the moment PostgreSQL queued it until the test let go.
      expect(migration!.lock_waits[0]!.waited_ms).toBeGreaterThanOrEqual(Math.floor(releasedAt.getTime() - waiting.waitStart.getTime()));
      expect(result.events.find((e) => e.event === "lock_wait_started")).toMatchObject({
        migration: "002_add_widget_colour",
        lock_mode: "AccessExclusiveLock",
        relation: "widgets",
        blocking_pids: [holderPid],
      });
      expect(await schemaSnapshot(db.sql)).toEqual(before);
    } finally {
      await holder.end();
    }
  });

  test("a rehearsal whose session is terminated mid-way stops with exit 1, and nothing is kept", async () => {
    const { db, dir } = await appliedThenPending({ "002_add_widget_colour.sql": PENDING["002_add_widget_colour.sql"] });
    const before = await schemaSnapshot(db.sql);
    const holder = postgres(db.url, { max: 1, onnotice: () => undefined });
    try {
      await holder`begin`;
      await holder`lock table widgets in access exclusive mode`;
      const run = watchBothStreams(["rehearse", "--json"], { url: db.url, migrationsDir: dir });
      await waitUntilBlocked(db);
      await db.sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'studio-migrate' and wait_event_type = 'Lock'`;
      const result = await run.result();
      await holder`rollback`;
      expect(result.code).toBe(1);
      // The failed statement may or may not be reported first (the lost connection races it); the run always ends so.
      const stoppedEvent = result.events.find((e) => e.event === "run_failed");
      expect(stoppedEvent).toMatchObject({ level: "error", error: "run_aborted", exit_code: 1 });
      expect(stoppedEvent!.message).toStartWith("the rehearsal stopped: ");
      expect(await schemaSnapshot(db.sql)).toEqual(before);
    } finally {
      await holder.end();
    }
  });

  test("text output: one line per migration, the error block under the failure", async () => {
    const { db, dir } = await appliedThenPending({
      "002_add_widget_colour.sql": PENDING["002_add_widget_colour.sql"],
      "003_more_widgets.sql": "-- migrate:hold waiting for the import\ninsert into widgets values (3, 'three');\n",
      "004_duplicate_widget.sql": "insert into widgets values (2, 'two');\ninsert into widgets values (1, 'again');\n",
      "005_index_names.sql": "-- migrate:no-transaction\ncreate index concurrently widgets_name_idx on widgets (name);\n",
      "006_create_gadgets.sql": PENDING["004_create_gadgets.sql"],
    });
    const result = await rehearseUnchanged(db, dir, []);
    expect(result.code).toBe(1);
    const document = result.stdout.split("\n").filter((line) => line !== "" && !line.startsWith("{"));
    const ms = String.raw`\d+ ms`;
    // The summary is the last line, under the table.
    const finished = JSON.parse(result.stdout.trimEnd().split("\n").at(-1)!) as Record<string, unknown>;
    expect(finished).toMatchObject({ event: "run_finished", passed: 1, failed: 1, not_rehearsable: 1, not_run: 1, held: 1, rolled_back: true });
    expect(finished.message).toMatch(
      new RegExp(String.raw`^rehearsed in ${ms} and rolled back, the database is unchanged: 1 passed, 1 failed, 1 not rehearsable, 1 not run, 1 held$`),
    );
    const expected = [
      String.raw`^  passed           002_add_widget_colour\.sql  ${ms}$`,
      String.raw`^  held             003_more_widgets\.sql       waiting for the import$`,
      String.raw`^  failed           004_duplicate_widget\.sql   ${ms}$`,
      String.raw`^                   004_duplicate_widget\.sql:2:1: duplicate key value violates unique constraint "widgets_pkey" \(SQLSTATE 23505\)$`,
      String.raw`^                     statement: insert into widgets values \(1, 'again'\)$`,
      String.raw`^                     detail: Key \(id\)=\(1\) already exists\.$`,
      String.raw`^  not rehearsable  005_index_names\.sql        no transaction: cannot be rolled back, so up runs it for real$`,
      String.raw`^  not run          006_create_gadgets\.sql     after 004_duplicate_widget\.sql failed$`,
    ];
    expect(document.length).toBe(expected.length);
    expected.forEach((pattern, index) => expect(document[index]).toMatch(new RegExp(pattern)));
  });

  test("nothing pending: exit 0 and an empty list", async () => {
    const { db, dir } = await appliedThenPending({});
    const result = await rehearseUnchanged(db, dir);
    expect(result.code).toBe(0);
    expect(rehearsalDocument(result).migrations).toEqual([]);
    expect(result.events.find((e) => e.event === "run_finished")?.message).toBe("nothing to rehearse: no pending migrations");
  });
});

describe("rehearse refuses exactly as up does, before running anything", () => {
  const pending = { "002_add_widget_colour.sql": PENDING["002_add_widget_colour.sql"] };
  const cases: { name: string; setup: () => Promise<{ db: TestDatabase; dir: string }>; names: string }[] = [
    {
      name: "drift: an applied file was edited",
      names: "001_create_widgets.sql",
      setup: async () => {
        const applied = await appliedThenPending(pending);
        await writeFile(join(applied.dir, "001_create_widgets.sql"), `-- edited\n${WIDGETS}`);
        return applied;
      },
    },
    {
      name: "out of order: a new file below an applied version",
      names: "002_add_widget_colour.sql",
      setup: async () => {
        const applied = await appliedThenPending({ "003_later.sql": "create table later (id int);\n" });
        expect((await runMain([], { url: applied.db.url, migrationsDir: applied.dir })).code).toBe(0);
        await writeFile(join(applied.dir, "002_add_widget_colour.sql"), pending["002_add_widget_colour.sql"]);
        return applied;
      },
    },
    {
      name: "transaction control in a transactional file",
      names: "003_commits.sql",
      setup: () => appliedThenPending({ ...pending, "003_commits.sql": "create table early (id int);\ncommit;\n" }),
    },
  ];

  for (const { name, setup, names } of cases) {
    test(name, async () => {
      const { db, dir } = await setup();
      const result = await rehearseUnchanged(db, dir);
      expect(result.code).toBe(4);
      expect(result.stdout).toBe("");
      expect(failure(result)).toMatchObject({ event: "run_failed", error: "refused", exit_code: 4 });
      expect(failure(result).message).toContain(names);
      expect(result.events.filter((e) => e.event === "migration_started")).toEqual([]);
    });
  }
});

describe("the platform migrations", () => {
  test("rehearse cleanly on a fresh database, and leave none of themselves behind", async () => {
    const db = await server.fresh();
    const result = await rehearseUnchanged(db, undefined);
    expect(result.code).toBe(0);
    expect(outcomes(rehearsalDocument(result))).toEqual({
      "001_create_platform_schema.sql": "passed",
      "002_platform_billing_schema.sql": "passed",
      "003_user_management_and_permissions.sql": "passed",
      "004_create_lancio_org.sql": "passed",
      "005_create_audit_logs.sql": "passed",
      "006_add_platform_databases_table.sql": "passed",
      "007_restrictive_rls_policies.sql": "held",
      "008_add_active_org_tracking.sql": "passed",
    });
    const [schema] = await db.sql`select to_regnamespace('platform') as platform`;
    expect(schema!.platform).toBeNull();
  });
});

/** Waits until the job's session waits on a lock; returns when PostgreSQL queued it, and its blockers. */
function waitUntilBlocked(db: TestDatabase): Promise<{ waitStart: Date; blocking: number[] }> {
  return eventually("the job's session to wait on a lock", async () => {
    const [row] = await db.sql<{ wait_start: Date; blocking: number[] }[]>`
      select l.waitstart as wait_start, pg_blocking_pids(a.pid) as blocking
      from pg_stat_activity a join pg_locks l on l.pid = a.pid and not l.granted
      where a.application_name = 'studio-migrate' and a.wait_event_type = 'Lock' and l.waitstart is not null`;
    return row && { waitStart: row.wait_start, blocking: row.blocking };
  });
}
