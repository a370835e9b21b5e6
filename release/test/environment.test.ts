/**
 * Conditions of the environment, not bugs of the job: entries in the migrations folder that are
 * not migration files (a directory, symbolic links, near-miss names). Each ends with its documented
 * exit code and a message naming the cause and the fix, never "unexpected error", and writes
 * nothing where nothing may run.
 */
import { describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, realpath, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, runMigrate, type RunResult } from "./support/run-migrate.ts";
import { catalogPicture, tableExists, trackedStatuses } from "./support/catalog.ts";

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
