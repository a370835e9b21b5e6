/**
 * Invariant 6, Secret: no output and no table the job writes holds the database password, however
 * DATABASE_URL is spelled, or a password literal of a migration's CREATE/ALTER ROLE/USER.
 */
import { describe, expect, test } from "bun:test";
import { useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, runMigrate, type RunResult } from "./support/run-migrate.ts";
import { describeUrlProblem } from "../src/config.ts";
import { redactorFor } from "../src/redact.ts";

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
