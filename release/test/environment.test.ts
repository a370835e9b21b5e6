/**
 * Conditions of the environment, not bugs of the job: entries in the migrations folder that are
 * not migration files (a directory, symbolic links, near-miss names), a read-only database, a role
 * without the privileges the job's own tables need, and a lock on the tracking table held by
 * another session. Each ends with its documented exit code and a message naming the cause and
 * the fix, never "unexpected error", and writes nothing where nothing may run.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { mkdir, mkdtemp, realpath, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, runMigrate, type RunResult } from "./support/run-migrate.ts";
import { catalogPicture, tableExists, trackedStatuses, lastRun } from "./support/catalog.ts";

const server = useTestServer();

const FIRST = { "001_first.sql": "create table first (id int primary key);\n" };
const NEAR_TABLE = "create table near_miss (id int);\n";

function expectNoBugReport(result: RunResult) {
  expect(`${result.stdout}${result.stderr}`).not.toContain("unexpected error");
}

/** The refusal's exit code and message, which must name each of `mentions`. */
function expectFailure(result: RunResult, exitCode: number, ...mentions: string[]) {
  expectNoBugReport(result);
  expect(result.code).toBe(exitCode);
  const { message } = failure(result);
  for (const mention of mentions) expect(message).toContain(mention);
}

/** Runs `args` on a fresh database with `dir` and checks nothing was written. */
async function runOnUntouchedDatabase(dir: string, args: string[] = []): Promise<RunResult> {
  const db = await server.fresh();
  const before = await catalogPicture(db.sql);
  const result = await runMigrate(args, { url: db.url, migrationsDir: dir });
  expect(await catalogPicture(db.sql)).toBe(before);
  expect(await tableExists(db.sql, "first")).toBe(false);
  return result;
}

async function runsRecorded(db: TestDatabase): Promise<number> {
  const [row] = await db.sql<{ count: number }[]>`select count(*)::int as count from platform.schema_migrations_runs`;
  return row!.count;
}

describe("entries of the migrations folder that are not files the job may read are refused, naming them (exit 4)", () => {
  test("a directory named like a migration", async () => {
    const dir = await migrationsFolder(FIRST);
    await mkdir(join(dir, "002_x.sql"));
    for (const args of [[], ["check"]]) {
      expectFailure(await runOnUntouchedDatabase(dir, args), 4, "002_x.sql", "is a directory, not a migration file", "move the directory out of the migrations folder: a migration is one file");
    }
  });

  test("a dangling symbolic link named like a migration", async () => {
    const dir = await migrationsFolder(FIRST);
    await symlink("gone/002_x.sql", join(dir, "002_x.sql"));
    const result = await runOnUntouchedDatabase(dir);
    expectFailure(result, 4, "002_x.sql", "is a symbolic link to gone/002_x.sql, which does not exist", "replace the link with the file itself");
    expect(failure(result)).toMatchObject({ error: "refused", checks: ["file"], files: ["002_x.sql"] });
  });

  test("a symbolic link to a file outside the migrations folder", async () => {
    const outside = await realpath(await mkdtemp(join(tmpdir(), "migrate-test-outside-")));
    await writeFile(join(outside, "shared.sql"), NEAR_TABLE);
    const dir = await migrationsFolder(FIRST);
    await symlink(join(outside, "shared.sql"), join(dir, "002_shared.sql"));
    for (const args of [[], ["check"]]) {
      expectFailure(await runOnUntouchedDatabase(dir, args), 4, "002_shared.sql", `is a symbolic link to ${join(outside, "shared.sql")}, outside the migrations folder`, "copy the file into the folder in place of the link");
    }
  });

  test("a symbolic link that loops", async () => {
    const dir = await migrationsFolder(FIRST);
    await symlink("002_loop.sql", join(dir, "002_loop.sql"));
    expectFailure(await runOnUntouchedDatabase(dir), 4, "002_loop.sql", "is a symbolic link that never reaches a file (ELOOP)");
  });

  test("a symbolic link to a file inside the folder is followed: applied, with the checksum of the file it points to", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder(FIRST);
    await mkdir(join(dir, "shared"));
    await writeFile(join(dir, "shared", "linked.sql"), NEAR_TABLE);
    await symlink(join("shared", "linked.sql"), join(dir, "002_linked.sql"));
    const result = await runMigrate([], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(0);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_first": "applied", "002_linked": "applied" });
    const [row] = await db.sql`select checksum from platform.schema_migrations where version = 2`;
    expect(row!.checksum).toBe(new Bun.CryptoHasher("sha256").update(NEAR_TABLE).digest("hex"));
  });
});

describe("names that look like a migration but are not one: a warning in up, a refusal in check", () => {
  const NEAR_MISSES = {
    "002_near.sql ": "its name ends in whitespace",
    "003_near.psql": 'ends in ".psql", and migrations end in .sql or .ts',
    "004_near.sql.bak": 'ends in ".bak", and migrations end in .sql or .ts',
  };
  const nearMissFolder = () => migrationsFolder({ ...FIRST, ...Object.fromEntries(Object.keys(NEAR_MISSES).map((name) => [name, NEAR_TABLE])) });

  test("up applies the real migrations, names each near miss in a warning, and applies none of them", async () => {
    const db = await server.fresh();
    const result = await runMigrate([], { url: db.url, migrationsDir: await nearMissFolder() });
    expect(result.code).toBe(0);
    const warnings = result.events.filter((event) => event.event === "file_ignored");
    expect(warnings.map((warning) => warning.file).sort()).toEqual(Object.keys(NEAR_MISSES).sort());
    for (const warning of warnings) {
      expect(warning.level).toBe("warn");
      expect(warning.message).toContain(`${JSON.stringify(warning.file)} looks like a migration but is not one: ${NEAR_MISSES[warning.file as keyof typeof NEAR_MISSES]}; it is not applied`);
      expect(warning.message).toContain("if not, move it out of the migrations folder (check refuses it)");
    }
    expect(result.stderr).toContain('"file_ignored"');
    expect(await trackedStatuses(db.sql)).toEqual({ "001_first": "applied" });
    expect(await tableExists(db.sql, "near_miss")).toBe(false);
  });

  test("check refuses them all at once (exit 4), naming each", async () => {
    const result = await runMigrate(["check"], { migrationsDir: await nearMissFolder() });
    expectFailure(result, 4, ...Object.entries(NEAR_MISSES).flatMap(([name, why]) => [JSON.stringify(name), why]));
    expect(failure(result)).toMatchObject({ error: "refused", checks: ["ignored"] });
    expect((failure(result).files as string[]).sort()).toEqual(Object.keys(NEAR_MISSES).sort());
  });
});

describe("the database does not let the job do its own work", () => {
  test("a read-only database: exit 4, the cause and the fix, and nothing written", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder(FIRST);
    expect((await runMigrate([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await writeFile(join(dir, "002_second.sql"), NEAR_TABLE);
    await db.sql.unsafe(`alter database ${db.name} set default_transaction_read_only = on`);
    const before = await catalogPicture(db.sql);
    const runs = await runsRecorded(db);

    const result = await runMigrate([], { url: db.url, migrationsDir: dir });
    expectFailure(result, 4, "the database is read-only (SQLSTATE 25006", "default_transaction_read_only is on", "point DATABASE_URL at the primary", `alter database ${db.name} set default_transaction_read_only = off`);
    expect(failure(result)).toMatchObject({ error: "database_refused", code: "25006" });
    expect(await catalogPicture(db.sql)).toBe(before);
    expect(await runsRecorded(db)).toBe(runs);
    // Reading is still allowed: status and plan work on a read-only database.
    for (const command of ["status", "plan"]) expect((await runMigrate([command], { url: db.url, migrationsDir: dir })).code).toBe(0);
  });

  /** A login role of the test's own, with a password the job's output must never show either. */
  async function loginRole(db: TestDatabase, name: string) {
    const password = `Rl-${name}-9x!`;
    await db.sql.unsafe(`create role ${name} login password '${password}'`);
    return { url: `postgresql://${name}:${encodeURIComponent(password)}@127.0.0.1:${server.port}/${db.name}`, password };
  }

  test("a role without CREATE on the database: exit 4, the grant that fixes it, and nothing written", async () => {
    const db = await server.fresh();
    const role = `no_create_${process.pid}`;
    const { url, password } = await loginRole(db, role);
    const before = await catalogPicture(db.sql);
    const result = await runMigrate([], { url, migrationsDir: await migrationsFolder(FIRST) });
    expect(`${result.stdout}${result.stderr}`).not.toContain(password);
    expectFailure(
      result,
      4,
      `role "${role}" lacks CREATE on database "${db.name}" (SQLSTATE 42501`,
      `grant create on database ${db.name} to ${role}`,
      `or create schema platform beforehand and grant the role usage and create on it: create schema platform; grant usage, create on schema platform to ${role}`,
    );
    expect(failure(result)).toMatchObject({ error: "database_refused", code: "42501" });
    expect(await catalogPicture(db.sql)).toBe(before);
    expect(await tableExists(db.sql, "platform.schema_migrations_runs")).toBe(false);
    // Reading needs no CREATE: status and plan work for the same role.
    for (const command of ["status", "plan"]) expect((await runMigrate([command], { url, migrationsDir: await migrationsFolder(FIRST) })).code).toBe(0);
  });

  test("a role without CREATE on the job's schema: exit 4, and the grant on the schema", async () => {
    const db = await server.fresh();
    const role = `no_schema_${process.pid}`;
    const { url } = await loginRole(db, role);
    await db.sql.unsafe(`create schema platform; grant create on database ${db.name} to ${role}`);
    const before = await catalogPicture(db.sql);
    const result = await runMigrate([], { url, migrationsDir: await migrationsFolder(FIRST) });
    expectFailure(result, 4, `role "${role}" lacks a privilege on schema "platform" (SQLSTATE 42501`, `grant usage, create on schema platform to ${role}`);
    expect(await catalogPicture(db.sql)).toBe(before);
  });

  test("a lock on the tracking table held past MIGRATE_LOCK_TIMEOUT during resolve: exit 3, who to look for, and the row unchanged", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder(FIRST);
    expect((await runMigrate([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await writeFile(join(dir, "001_first.sql"), "create table first (id int primary key); -- edited\n");
    const [recorded] = await db.sql`select checksum from platform.schema_migrations where version = 1`;

    const holder = postgres(db.url, { max: 1, onnotice: () => undefined });
    const held = await holder.reserve();
    await held`begin`;
    await held`lock table platform.schema_migrations in access exclusive mode`;
    let result: RunResult;
    try {
      result = await runMigrate(["resolve", "1", "--accept-checksum"], { url: db.url, migrationsDir: dir, env: { MIGRATE_LOCK_TIMEOUT: "300ms" } });
    } finally {
      await held`rollback`;
      held.release();
      await holder.end();
    }
    expectFailure(result, 3, "another session held a lock the job needed for longer than its lock_timeout (MIGRATE_LOCK_TIMEOUT) allows (SQLSTATE 55P03 while running resolve", '"platform"."schema_migrations"', "MIGRATE_LOCK_TIMEOUT", "pg_locks", "then run the command again");
    expect(failure(result)).toMatchObject({ error: "database_unavailable", code: "55P03" });
    const [after] = await db.sql`select checksum from platform.schema_migrations where version = 1`;
    expect(after!.checksum).toBe(recorded!.checksum);
    expect(await lastRun(db.sql)).toMatchObject({ outcome: "unavailable", error_code: "55P03" });

    // With the lock gone, the same command does what it says.
    expect((await runMigrate(["resolve", "1", "--accept-checksum"], { url: db.url, migrationsDir: dir })).code).toBe(0);
  });
});
