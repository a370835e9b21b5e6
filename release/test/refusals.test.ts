/**
 * Every refusal and bad input: the exit code, a message naming the file or variable, and a
 * database left exactly as it was.
 */
import { describe, expect, test } from "bun:test";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEST_PASSWORD, type TestDatabase, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { catalogPicture } from "./support/catalog.ts";

const server = useTestServer();

const GOOD = "create table good (id int);\n";

/** Runs `args` on a fresh database and checks the catalog is unchanged afterwards. */
async function runUnchanged(files: Record<string, string | Uint8Array>, args: string[] = [], prepare?: (db: TestDatabase) => Promise<void>): Promise<RunResult> {
  const db = await server.fresh();
  await prepare?.(db);
  const before = await catalogPicture(db.sql);
  const result = await runMain(args, { url: db.url, migrationsDir: await migrationsFolder(files) });
  expect(await catalogPicture(db.sql)).toBe(before);
  return result;
}

function expectRefusal(result: RunResult, exitCode: number, ...mentions: string[]) {
  expect(result.code).toBe(exitCode);
  const { message } = failure(result);
  for (const mention of mentions) expect(message).toContain(mention);
}

describe("bad migration files are refused before anything runs", () => {
  test("duplicate version", async () => {
    expectRefusal(await runUnchanged({ "001_a.sql": GOOD, "001_b.sql": GOOD, "002_c.sql": GOOD }), 4, "001_b.sql", "duplicate version 1", "001_a.sql");
  });

  test("malformed name", async () => {
    expectRefusal(await runUnchanged({ "001_a.sql": GOOD, "2-Add-Things.sql": GOOD }), 4, "2-Add-Things.sql", "malformed migration file name");
  });

  test("empty file", async () => {
    expectRefusal(await runUnchanged({ "001_a.sql": GOOD, "002_empty.sql": "  \n" }), 4, "002_empty.sql", "empty");
  });

  test("a file with only comments", async () => {
    expectRefusal(await runUnchanged({ "001_a.sql": GOOD, "002_comments.sql": "-- nothing yet\n/* really */\n" }), 4, "002_comments.sql", "no SQL statements");
  });

  test("not UTF-8", async () => {
    const latin1 = new Uint8Array([...new TextEncoder().encode("insert into t values ('caf"), 0xe9, ...new TextEncoder().encode("');\n")]);
    expectRefusal(await runUnchanged({ "001_a.sql": GOOD, "002_latin1.sql": latin1 }), 4, "002_latin1.sql", "not valid UTF-8");
  });

  test("rollback without its migration", async () => {
    expectRefusal(await runUnchanged({ "001_a.sql": GOOD, "003_rollback.sql": "drop table x;\n" }), 4, "003_rollback.sql", "rollback without its migration");
  });

  test("unknown directive", async () => {
    expectRefusal(await runUnchanged({ "001_a.sql": `-- migrate:no-transactoin\n${GOOD}` }), 4, "001_a.sql:1", 'unknown directive "-- migrate:no-transactoin"');
  });

  test("a bad directive value is a usage error (exit 2)", async () => {
    expectRefusal(await runUnchanged({ "001_a.sql": `-- migrate:hold\n${GOOD}` }), 2, "001_a.sql:1", "hold", "needs a value");
    expectRefusal(await runUnchanged({ "001_a.sql": `-- migrate:no-transaction please\n${GOOD}` }), 2, "001_a.sql:1", "takes no value");
    expectRefusal(await runUnchanged({ "001_a.sql": `-- migrate:hold one\n-- migrate:hold two\n${GOOD}` }), 2, "001_a.sql:2", "given twice");
    expectRefusal(await runUnchanged({ "001_a.sql": `-- migrate:lock-timeout soon\n${GOOD}` }), 2, "001_a.sql:1", "not a duration");
  });

  test("every bad file is named in one report", async () => {
    const result = await runUnchanged({ "001_a.sql": GOOD, "001_b.sql": GOOD, "x.sql": GOOD, "002_e.sql": "" });
    expectRefusal(result, 4, "001_b.sql", "x.sql", "002_e.sql");
  });

  test("top-level transaction control in a transactional file, with file:line", async () => {
    const result = await runUnchanged({
      "001_a.sql": GOOD,
      "002_tx.sql": "create table t2 (id int);\nDO $$ BEGIN PERFORM 1; END $$;\nBEGIN;\ninsert into t2 values (1);\nCOMMIT;\n",
    });
    expectRefusal(result, 4, "002_tx.sql:3", "002_tx.sql:5", "BEGIN", "COMMIT", "-- migrate:no-transaction");
  });

  test("a syntax error is refused with file and line before anything runs", async () => {
    expectRefusal(await runUnchanged({ "001_a.sql": GOOD, "002_typo.sql": "create table t2 (id int);\n\ncreate tabel t3 (id int);\n" }), 4, "002_typo.sql:3", "syntax error");
  });
});

describe("bad configuration", () => {
  test("no DATABASE_URL and no --embedded shows both ways to run", async () => {
    const result = await runMain([], {});
    expectRefusal(result, 2, "DATABASE_URL", "--embedded", "DATABASE_PUBLIC_URL");
  });

  test("a malformed DATABASE_URL is explained without the password", async () => {
    const result = await runMain([], { url: `mysql://root:${encodeURIComponent(TEST_PASSWORD)}@db/x` });
    expectRefusal(result, 2, "DATABASE_URL", 'scheme is "mysql"');
    const garbage = await runMain([], { url: `postgresql://user:${TEST_PASSWORD}@` });
    expect(garbage.code).toBe(2);
    expect(failure(garbage).message).toContain("DATABASE_URL");
  });

  test("unknown flags, commands and bad variables are reported together", async () => {
    const result = await runMain(["--frobnicate"], { url: "postgresql://u@h/d", env: { MIGRATIONS_TABLE: "Not Valid", LOG_FORMAT: "yaml" } });
    expectRefusal(result, 2, "--frobnicate", "MIGRATIONS_TABLE", "LOG_FORMAT");
    expectRefusal(await runMain(["migrate-all"], { url: "postgresql://u@h/d" }), 2, 'unknown command "migrate-all"');
  });

  test("bad values of the timeout, retry, drift and lint switches are reported together", async () => {
    const result = await runMain([], {
      url: "postgresql://u@h/d",
      env: { MIGRATE_LOCK_TIMEOUT: "a while", MIGRATE_LOCK_ATTEMPTS: "0", MIGRATE_RUN_TIMEOUT: "forever", MIGRATE_STRICT_DRIFT: "yes", MIGRATE_LINT: "loud" },
    });
    expectRefusal(result, 2, "MIGRATE_LOCK_TIMEOUT", "MIGRATE_LOCK_ATTEMPTS", "MIGRATE_RUN_TIMEOUT", "MIGRATE_STRICT_DRIFT", "MIGRATE_LINT");
  });

  test("contradictory or missing command arguments are usage errors", async () => {
    expectRefusal(await runMain(["--embedded", "--public-url"], {}), 2, "--embedded and --public-url");
    expectRefusal(await runMain(["down", "--yes"], { url: "postgresql://u@h/d" }), 2, "down needs --to <version>");
    expectRefusal(await runMain(["status", "--yes"], { url: "postgresql://u@h/d" }), 2, "--yes does not apply to the status command");
  });

  test("an embedded data folder the postgres user cannot reach names EMBEDDED_POSTGRES_DIR and the fix", async () => {
    const privateDir = await mkdtemp(join(tmpdir(), "migrate-private-"));
    const result = await runMain(["--embedded"], { env: { EMBEDDED_POSTGRES_DIR: join(privateDir, "data") } });
    expectRefusal(result, 2, "EMBEDDED_POSTGRES_DIR", privateDir, "chmod o+x");
  });

  test("a missing migrations folder names MIGRATIONS_DIR", async () => {
    expectRefusal(await runMain([], { url: "postgresql://u@h/d", migrationsDir: "/nonexistent/migrations" }), 2, "MIGRATIONS_DIR", "/nonexistent/migrations");
  });

  test("--help prints usage and exits 0", async () => {
    const result = await runMain(["--help"], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("usage: bun release/migrate.ts");
  });

  test("--version prints the job's version and exits 0, without a database", async () => {
    const result = await runMain(["--version"], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^studio-release-migrations \d+\.\d+\.\d+ \(bun \d+\.\d+\.\d+\)\n$/);
    expect(result.stderr).toBe("");
  });

  test("a flag or command the job does not have is named with the one meant, every one at once", async () => {
    const messages = async (args: string[]) => {
      const result = await runMain(args, { url: "postgresql://u@h/d" });
      expect(result.code).toBe(2);
      return failure(result).message;
    };
    expect(await messages(["status", "--jsonn", "--exit-cod"])).toBe(
      "configuration problem (2 problems):\n  - unknown flag --jsonn (did you mean --json?) (see --help)\n  - unknown flag --exit-cod (did you mean --exit-code?) (see --help)",
    );
    expect(await messages(["--dry-run"])).toBe("configuration problem: unknown flag --dry-run: there is no dry run of up: plan shows what up would do, statement by statement, and changes nothing");
    expect(await messages(["--frobnicate"])).toBe("configuration problem: unknown flag --frobnicate (see --help)");
    expect(await messages(["stauts"])).toStartWith('configuration problem: unknown command "stauts" (did you mean status?) (commands: up, status,');
    expect(await messages(["frobnicate"])).toStartWith('configuration problem: unknown command "frobnicate" (commands:');
  });
});
