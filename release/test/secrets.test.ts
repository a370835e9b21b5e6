/**
 * Invariant 6, Secret: no output and no table the job writes holds the database password, however
 * DATABASE_URL is spelled, or a password literal of a migration's CREATE/ALTER ROLE/USER.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { useTestServer, type TestDatabase } from "./support/postgres.ts";
import { failure, migrationsFolder, runMigrate, type RunResult } from "./support/run-migrate.ts";
import { loadSqlParser } from "../src/files/sql-statements.ts";
import { describeUrlProblem } from "../src/shared/config.ts";
import { redactorFor } from "../src/shared/redact.ts";
import { RefusedError } from "../src/shared/errors.ts";
import type { SqlSource } from "../src/files/migration-files.ts";

const server = useTestServer();

/** Every password below holds this, so one search finds any piece of it in the output. */
const MARK = "Zq9xK";

/** What the issue found, and its relatives: spellings a URL parser reads the password out of. */
const MISREAD_URLS = [
  { spelling: "an unencoded / after digits (read as port 4711 and a path)", url: `postgres://deploy:4711/${MARK}@db.internal:5432/railway`, character: '"/"', encoded: "%2F" },
  { spelling: "an unencoded # after digits (read as a port and a fragment)", url: `postgres://deploy:4711#${MARK}@db.internal:5432/railway`, character: '"#"', encoded: "%23" },
  { spelling: "an unencoded ? (read as a port and a query)", url: `postgres://deploy:5432?${MARK}@db.internal/railway`, character: '"?"', encoded: "%3F" },
  { spelling: "an unencoded @ (libpq splits at the first @, URL parsers at the last)", url: `postgres://deploy:${MARK}@1@db.internal:5432/railway`, character: '"@"', encoded: "%40" },
  { spelling: "a % not followed by two hex digits", url: `postgres://deploy:${MARK}%zz@db.internal:5432/railway`, character: '"%"', encoded: "%25" },
  { spelling: "a space", url: `postgres://deploy:${MARK} 1@db.internal:5432/railway`, character: "a space", encoded: "%20" },
  { spelling: "percent-encoding that is not UTF-8", url: `postgres://deploy:${MARK}%FF@db.internal:5432/railway`, character: "UTF-8", encoded: "encodeURIComponent" },
] as const;

function expectNoMark(result: RunResult, mark: string): void {
  expect(result.stdout).not.toContain(mark);
  expect(result.stderr).not.toContain(mark);
}

describe("a DATABASE_URL whose password a parser would misread", () => {
  for (const { spelling, url, character, encoded } of MISREAD_URLS) {
    test(`${spelling}: refused with exit 2, naming the character, never echoing the URL`, async () => {
      const result = await runMigrate([], { url, migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }) });
      expect(result.code).toBe(2);
      const { message } = failure(result);
      expect(message).toContain("DATABASE_URL");
      expect(message).toContain(character);
      expect(message).toContain(encoded);
      expect(message).not.toContain("db.internal");
      expectNoMark(result, MARK);
    });
  }

  test("DATABASE_PUBLIC_URL (--public-url) is held to the same rule and named", async () => {
    const result = await runMigrate(["--public-url"], {
      migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }),
      env: { DATABASE_PUBLIC_URL: `postgresql://postgres:4711/${MARK}@roundhouse.proxy.rlwy.net:31337/railway` },
    });
    expect(result.code).toBe(2);
    expect(failure(result).message).toContain("DATABASE_PUBLIC_URL");
    expect(failure(result).message).toContain("%2F");
    expectNoMark(result, MARK);
  });

  test("a : inside the password is legal in a URL, read alike by every parser, and accepted", async () => {
    const db = await server.fresh();
    const password = `${MARK}:colon`;
    await db.sql.unsafe(`create role secrets_colon superuser login password '${password}'`);
    const url = `postgresql://secrets_colon:${password}@127.0.0.1:${server.port}/${db.name}`;
    const result = await runMigrate([], { url, migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }) });
    expect(result.code).toBe(0);
    expectNoMark(result, MARK);
  });

  test("the rule, spelling by spelling, without the URL or the password in any message", () => {
    expect(describeUrlProblem(`postgresql://app:${encodeURIComponent("a/b#c?d@e%f g")}@db:5432/x`)).toBeUndefined();
    expect(describeUrlProblem("postgresql://app:a:b-._~!$&'()*+,;=@db:5432/x")).toBeUndefined();
    expect(describeUrlProblem(`postgresql://app:${MARK}/#@db/x`)).toBe(
      'the password holds "/" and "#", which must be percent-encoded in a URL: write "/" as %2F and "#" as %23 ' +
        "(encodeURIComponent does it); an @ in the database name or a parameter must be written %40 too",
    );
    expect(describeUrlProblem(`postgresql://a/b:${MARK}@db/x`)).toContain('the user name holds "/"');
    expect(describeUrlProblem(`postgresql://app:${MARK}\t@db/x`)).toContain("a control character (U+0009)");
    expect(describeUrlProblem(`postgresql://app:${MARK}é@db/x`)).toContain("a non-ASCII character");
    for (const url of [`postgresql://app:${MARK}/#@db/x`, `postgresql://app:${MARK}\t@db/x`, `postgresql://app:${MARK}é@db/x`]) {
      expect(describeUrlProblem(url)).not.toContain(MARK);
    }
  });
});

describe("the redactor, whatever the URL's spelling", () => {
  test("takes everything between user: and the last @ as the password of an ambiguous URL", () => {
    const redact = redactorFor(`postgres://deploy:4711/${MARK}@db.internal:5432/railway`);
    expect(redact(`target deploy:4711/${MARK}@db.internal:5432/railway`)).not.toContain(MARK);
    expect(redact(`connect postgres://someone:12/${MARK}#x@other/db failed`)).toBe("connect postgres://someone:********@other/db failed");
  });

  test("masks a password's JSON-escaped form, as it appears in a JSON log line", () => {
    const password = `${MARK}"quote\\back`;
    const redact = redactorFor(`postgresql://app:${encodeURIComponent(password)}@db:5432/x`);
    expect(redact(JSON.stringify({ message: `auth failed for ${password}` }))).toBe(JSON.stringify({ message: "auth failed for ********" }));
  });
});

const encoder = new TextEncoder();
const sqlFile = (text: string): SqlSource => ({ fileName: "001_roles.sql", path: "/m/001_roles.sql", source: encoder.encode(text), text, hadBom: false });

describe("password literals found by the parser", async () => {
  const parser = await loadSqlParser();
  const safeTexts = (text: string) => parser.statements(sqlFile(text)).map((statement) => statement.safeText);

  test("every spelling of a role's password is masked, and nothing else is", () => {
    expect(
      safeTexts(
        "-- é\ncreate role a login password 'it''s' valid until 'infinity';\n" +
          "alter user b with encrypted password E'md5\\'x';\n" +
          "create user c password $p$dollar$p$;\n" +
          "alter role d password null;\n" +
          "create role e password U&'d\\0061t';\n" +
          "alter role f password 'con'\n  'tinued';\n" +
          "create group g with password 'grp';\n" +
          "create user mapping for h server s options (user 'h', password 'fdw');\n",
      ),
    ).toEqual([
      "create role a login password '********' valid until 'infinity'",
      "alter user b with encrypted password '********'",
      "create user c password '********'",
      "alter role d password null",
      "create role e password '********'",
      "alter role f password '********'",
      "create group g with password '********'",
      "create user mapping for h server s options (user 'h', password '********')",
    ]);
  });

  test("statements carry their secrets for the redactor, in the forms the server and the file spell them", () => {
    const [statement] = parser.statements(sqlFile("create role a password 'it''s-S3cr3t';\n"));
    expect(statement!.secrets).toEqual(expect.arrayContaining(["it's-S3cr3t", "it''s-S3cr3t"]));
    expect(statement!.text).toBe("create role a password 'it''s-S3cr3t'");
  });

  test("a syntax error that quotes a string literal does not repeat it", () => {
    try {
      parser.statements(sqlFile(`create role a login '${MARK}-typo';\n`));
      throw new Error("expected a refusal");
    } catch (error) {
      expect(error).toBeInstanceOf(RefusedError);
      expect((error as RefusedError).message).toContain(`syntax error at or near "'********'"`);
      expect((error as RefusedError).message).not.toContain(MARK);
    }
  });
});

/** Every row of a job table, whole, as text: a literal in any column shows up here. */
async function tableText(db: TestDatabase, table: string): Promise<string[]> {
  const rows = await db.sql.unsafe<{ row: string }[]>(`select t::text as row from ${table} t`);
  return rows.map((row) => row.row);
}

/** Both of the job's tables, every row whole; the run history must hold this run's row. */
async function expectTablesFreeOf(db: TestDatabase, literal: string): Promise<void> {
  const runs = await tableText(db, "platform.schema_migrations_runs");
  expect(runs.length).toBeGreaterThan(0);
  for (const row of [...runs, ...(await tableText(db, "platform.schema_migrations"))]) expect(row).not.toContain(literal);
}

async function runAll(args: readonly string[][], db: TestDatabase, dir: string): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const command of args) results.push(await runMigrate(command, { url: db.url, migrationsDir: dir }));
  return results;
}

describe("a migration's password literal", () => {
  test("a failing CREATE ROLE … PASSWORD: masked in the error, plan, status and the run history", async () => {
    const literal = "S3cr3t-literal-xyz";
    const db = await server.fresh();
    await db.sql`create role secrets_taken`;
    const dir = await migrationsFolder({ "001_app_login.sql": `create role secrets_taken login password '${literal}';\n` });
    const [planText, planJson, up, status] = await runAll([["plan"], ["plan", "--json"], [], ["status"]], db, dir);
    for (const result of [planText!, planJson!, up!, status!]) expectNoMark(result, literal);
    await expectTablesFreeOf(db, literal);
    expect(up!.code).toBe(1);
    expect(failure(up!)).toMatchObject({ code: "42710", file: "001_app_login.sql", line: 1 });
    expect(failure(up!).message).toContain("statement: create role secrets_taken login password '********'");
    expect((await tableText(db, "platform.schema_migrations_runs")).join("\n")).toContain("'********'");
    expect(planText!.stdout).toContain("CREATE ROLE secrets_taken");
  });

  test("a failing no-transaction file: the tracking table's last_error holds the masked statement", async () => {
    const literal = "S3cr3t-literal-notx";
    const db = await server.fresh();
    await db.sql`create role secrets_taken_notx`;
    const dir = await migrationsFolder({
      "001_app_login.sql": `-- migrate:no-transaction\ncreate role secrets_taken_notx login password '${literal}';\n`,
    });
    const [up, status] = await runAll([[], ["status"]], db, dir);
    expect(up!.code).toBe(1);
    const [row] = await db.sql<{ status: string; last_error: string }[]>`select status, last_error from platform.schema_migrations where version = 1`;
    expect(row!.status).toBe("failed");
    expect(row!.last_error).toContain("statement: create role secrets_taken_notx login password '********'");
    for (const result of [up!, status!]) expectNoMark(result, literal);
    await expectTablesFreeOf(db, literal);
  });

  test("a failing ALTER USER … WITH ENCRYPTED PASSWORD: the verifier is a secret too", async () => {
    const verifier = "md5a3556571e93b0d20722ba62be61e8c2d";
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_rotate.sql": `alter user secrets_nobody with encrypted password '${verifier}';\n` });
    const [planText, up, rehearse] = await runAll([["plan"], [], ["rehearse"]], db, dir);
    expect(up!.code).toBe(1);
    expect(failure(up!)).toMatchObject({ code: "42704" });
    expect(failure(up!).message).toContain("statement: alter user secrets_nobody with encrypted password '********'");
    expect(rehearse!.code).toBe(1);
    for (const result of [planText!, up!, rehearse!]) expectNoMark(result, verifier);
    await expectTablesFreeOf(db, verifier);
  });

  test("a syntax error at the literal: the refusal of up, plan and check does not repeat it", async () => {
    const literal = "S3cr3t-literal-typo";
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_typo.sql": `create role secrets_typo login '${literal}';\n` });
    const [up, planText, check] = await runAll([[], ["plan"], ["check"]], db, dir);
    expect(up!.code).toBe(4);
    expect(failure(up!).message).toContain("001_typo.sql:1");
    expect(planText!.code).toBe(4);
    expect(check!.code).toBe(4);
    for (const result of [up!, planText!, check!]) expectNoMark(result, literal);
  });

  test("a successful run: the role gets the real password, and no output or table shows it, not even a NOTICE", async () => {
    const literal = "S3cr3t-literal-ok";
    const db = await server.fresh();
    const dir = await migrationsFolder({
      "001_app_login.sql": `create role secrets_ok login password '${literal}';\n`,
      // A later statement that echoes the literal: the job masks every literal its files hold.
      "002_echo.sql": `do $$ begin raise notice 'set up with %', '${literal}'; end $$;\n`,
    });
    const [planText, up, status] = await runAll([["plan"], [], ["status"]], db, dir);
    for (const result of [planText!, up!, status!]) expectNoMark(result, literal);
    await expectTablesFreeOf(db, literal);
    expect(up!.code).toBe(0);
    expect(up!.events.find((event) => event.event === "notice")?.message).toContain("set up with ********");

    const asRole = postgres(`postgresql://secrets_ok:${literal}@127.0.0.1:${server.port}/${db.name}`, { max: 1 });
    try {
      expect((await asRole<{ user: string }[]>`select current_user as user`)[0]!.user).toBe("secrets_ok");
    } finally {
      await asRole.end({ timeout: 1 });
    }
  });
});
