/** The pure parts: positions in UTF-8/CRLF text, directives, statement splitting, config, redaction. */
import { describe, expect, test } from "bun:test";
import { byteOffsetOfCharacter, lineColumnAtByte, lineStartByte } from "../src/files/source-position.ts";
import { parseDirectives } from "../src/files/directives.ts";
import { loadSqlParser, locateInFile, transactionControlRefusals } from "../src/files/sql-statements.ts";
import { checkpoints } from "../src/shared/cancellation.ts";
import { scanSync } from "libpg-query";
import { HELP, parseConfig } from "../src/shared/config.ts";
import { localUser } from "../host/local-user.ts";
import { hostname, userInfo } from "node:os";
import { COMMANDS } from "../src/commands/table.ts";
import { ConfigError, RefusedError } from "../src/shared/errors.ts";
import { describeTarget, redactorFor } from "../src/shared/redact.ts";
import { JOB_NAME, JOB_VERSION } from "../src/shared/version.ts";
import { formatDuration } from "../src/shared/duration.ts";
import { readMigrationFolder, type SqlSource } from "../src/files/migration-files.ts";

const encoder = new TextEncoder();
const source = (text: string, fileName = "001_x.sql"): SqlSource => ({ fileName, path: `/m/${fileName}`, source: encoder.encode(text), text, hadBom: false });
const layout = { migrationsDir: "/repo/apps/studio/database/migrations", embeddedDataDir: "/repo/.embedded-postgres" };

describe("source positions", () => {
  test("count characters, not bytes, and one line per LF in CRLF text", () => {
    const bytes = encoder.encode("é1\r\nü€x");
    expect(lineColumnAtByte(bytes, 0)).toEqual({ line: 1, column: 1 });
    expect(lineColumnAtByte(bytes, 2)).toEqual({ line: 1, column: 2 });
    // "ü€" is 5 bytes: 'x' is the 3rd character of line 2
    expect(lineColumnAtByte(bytes, 5 + 5)).toEqual({ line: 2, column: 3 });
  });

  test("map PostgreSQL's 1-based character positions to bytes, astral characters included", () => {
    const bytes = encoder.encode("a😀b");
    expect(byteOffsetOfCharacter(bytes, 1)).toBe(0);
    expect(byteOffsetOfCharacter(bytes, 2)).toBe(1);
    expect(byteOffsetOfCharacter(bytes, 3)).toBe(5);
  });

  /** Where every character of `text` is, counted one character at a time: what the index must agree with. */
  function positionsOneByOne(text: string) {
    const positions: { byte: number; line: number; column: number }[] = [];
    let byte = 0;
    let line = 1;
    let column = 1;
    for (const character of text) {
      positions.push({ byte, line, column });
      byte += encoder.encode(character).length;
      if (character === "\n") [line, column] = [line + 1, 1];
      else column++;
    }
    return positions;
  }

  // Several blocks of the index, with 2-, 3- and 4-byte characters, CRLF and LF, and lines far longer than a block.
  const mixed = Array.from({ length: 12 }, (_, i) => `select 'é€${i}', '😀';\r\n${"x".repeat(1500 + i)}ü\n${"€".repeat(900)}\r\n\n`).join("");
  const mixedBytes = encoder.encode(mixed);
  const expected = positionsOneByOne(mixed);

  test("line and column of every character of a long text with multibyte characters and CRLF", () => {
    const found = expected.map(({ byte }) => ({ byte, ...lineColumnAtByte(mixedBytes, byte) }));
    expect(found).toEqual(expected);
    expect(lineColumnAtByte(mixedBytes, mixedBytes.length)).toEqual({ line: expected.at(-1)!.line + 1, column: 1 });
  });

  test("character positions counted from any character's first byte, as PostgreSQL counts inside a statement", () => {
    for (let from = 0; from < expected.length; from += 997) {
      for (const position of [1, 2, 700, 1600, 5000]) {
        const wanted = expected[from + position - 1];
        expect(byteOffsetOfCharacter(mixedBytes, position, expected[from]!.byte)).toBe(wanted ? wanted.byte : mixedBytes.length);
      }
    }
  });

  test("line starts, and the end of the text past the last line", () => {
    const starts = expected.filter(({ column }) => column === 1).map(({ byte }) => byte);
    expect(starts.map((_, i) => lineStartByte(mixedBytes, i + 1))).toEqual(starts);
    expect(lineStartByte(mixedBytes, expected.at(-1)!.line + 2)).toBe(mixedBytes.length);
  });
});

describe("migration files", () => {
  test("a byte-order mark is left out of the source and remembered, for tools that count it", async () => {
    const sql = encoder.encode("SELECT 1;\n");
    const files: Record<string, Uint8Array> = {
      "001_marked.sql": new Uint8Array([0xef, 0xbb, 0xbf, ...sql]),
      "001_rollback.sql": new Uint8Array([0xef, 0xbb, 0xbf, ...sql]),
      "002_plain.sql": sql,
    };
    const fs = {
      // Of unknown kind, as some file systems list entries: each is looked at with lstat.
      readdir: async () => Object.keys(files).map((name) => ({ name, isFile: () => false, isDirectory: () => false, isSymbolicLink: () => false })),
      lstat: async () => ({ isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false }),
      readlink: async (path: string) => path,
      realpath: async (path: string) => path,
      readFile: async (path: string) => files[path.slice("/m/".length)]!,
    };
    const { files: [marked, plain] } = await readMigrationFolder("/m", fs, { refuseIgnored: false });
    expect(marked!.source).toEqual(sql);
    expect(marked!.hadBom).toBe(true);
    expect(marked!.rollback!.hadBom).toBe(true);
    expect(plain!.hadBom).toBe(false);
  });
});

describe("directives", () => {
  test("read from the header only", () => {
    const parsed = parseDirectives("001_x.sql", "-- migrate:no-transaction\n-- migrate:hold needs app v2\n\nselect 1;");
    expect(parsed.refusals).toEqual([]);
    expect(parsed.directives).toEqual({ transactional: false, holdReason: "needs app v2", lockTimeoutMs: undefined, statementTimeoutMs: undefined });
  });

  test("timeouts are durations", () => {
    const parsed = parseDirectives("001_x.sql", "-- migrate:lock-timeout 10s\n-- migrate:statement-timeout 30min\nselect 1;");
    expect(parsed.refusals).toEqual([]);
    expect(parsed.directives).toMatchObject({ lockTimeoutMs: 10_000, statementTimeoutMs: 1_800_000 });
    expect(parseDirectives("001_x.sql", "-- migrate:lock-timeout soon\nselect 1;").refusals[0]).toMatchObject({ check: "directive_value", line: 1 });
  });

  test("a directive below the first statement is refused, not ignored", () => {
    const parsed = parseDirectives("001_x.sql", "select 1;\n-- migrate:hold later\n");
    expect(parsed.refusals).toHaveLength(1);
    expect(parsed.refusals[0]).toMatchObject({ check: "directive", line: 2 });
  });

  test("far below the header, each refused directive keeps its own line; the word in a statement is no directive", () => {
    const body = Array.from({ length: 500 }, (_, index) => `insert into t values (${index});`);
    body[99] = "  -- migrate:hold not here";
    body[100] = "select 'migrate:hold' as text_not_a_directive;";
    body[399] = "-- migrate:no-transaction";
    const parsed = parseDirectives("001_x.sql", `-- a header comment\n\n-- migrate:lock-timeout 5s\n${body.join("\n")}`);
    expect(parsed.refusals.map((r) => [r.check, r.line])).toEqual([
      ["directive", 103],
      ["directive", 403],
    ]);
    expect(parsed.directives.lockTimeoutMs).toBe(5_000);
    expect(parsed.directives.transactional).toBe(true);
  });

  test("unknown names and bad values are told apart", () => {
    const parsed = parseDirectives("001_x.sql", "-- migrate:hodl x\n-- migrate:hold\n-- migrate:no-transaction yes\n");
    expect(parsed.refusals.map((r) => [r.check, r.line])).toEqual([
      ["directive", 1],
      ["directive_value", 2],
      ["directive_value", 3],
    ]);
  });
});

describe("statements", async () => {
  const parser = await loadSqlParser();

  test("BEGIN ... END inside DO blocks and function bodies is not transaction control", () => {
    const file = source(
      "DO $$ BEGIN RAISE NOTICE 'x'; END $$;\n" +
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$ BEGIN RETURN 1; END $fn$;\n" +
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n",
    );
    const statements = parser.statements(file);
    expect(statements.map((s) => s.kind)).toEqual(["DoStmt", "CreateFunctionStmt", "CreateFunctionStmt"]);
    expect(transactionControlRefusals(file, statements)).toEqual([]);
  });

  test("top-level transaction control is found with its line", () => {
    const file = source("-- header\ncreate table a (id int);\nBEGIN;\nselect 1;\nSAVEPOINT s;\nCOMMIT;\nEND;\n");
    const refusals = transactionControlRefusals(file, parser.statements(file));
    expect(refusals.map((r) => r.line)).toEqual([3, 5, 6, 7]);
  });

  test("a syntax error is refused with file and line", () => {
    try {
      parser.statements(source("select 1;\n\nselect frm where;"));
      throw new Error("expected a refusal");
    } catch (error) {
      expect(error).toBeInstanceOf(RefusedError);
      expect((error as RefusedError).refusals[0]).toMatchObject({ check: "syntax", file: "001_x.sql", line: 3 });
    }
  });

  test("a server error position maps to the file's line and column", () => {
    const file = source("-- é\r\ncreate table a (id int);\r\nselect * from\r\n  nope;");
    const [, select] = parser.statements(file);
    // PostgreSQL would report position 18 (the 'n' of nope) inside the second statement
    expect(locateInFile(file, select!, 18)).toMatchObject({ line: 4, column: 3, statement: "select * from …" });
  });

  test("comments that mention a mark are found piece by piece just as a scan of the whole file finds them", async () => {
    const statement = (i: number) => {
      if (i % 997 === 0) return `-- lint:allow prefer-bigint-over-int ${i} ü\ncreate table w_${i} (id int); -- lint:allow ban-char-field trailing ${i}`;
      if (i % 991 === 0) return `select /* lint:allow in a block comment ${i} */ 1;`;
      if (i % 983 === 0) return `select '-- lint:allow inside a string ${i}';\ndo $$ begin -- lint:allow inside a body ${i}\nend $$;`;
      return `insert into t values (${i}, 'größe');`;
    };
    const file = source(Array.from({ length: 10_000 }, (_, i) => statement(i)).join("\r\n"));
    const wholeFile = scanSync(file.text)
      .tokens.filter((token) => (token.tokenName === "SQL_COMMENT" || token.tokenName === "C_COMMENT") && token.text.includes("lint:allow"))
      .map((token) => ({ text: token.text, byteOffset: token.start }));
    const found = await parser.comments(file, "lint:allow", checkpoints(undefined, "scanning"));
    expect(found).toEqual(wholeFile);
    // 11 statements with two line comments and 10 with a block comment; none from strings or bodies.
    expect(found).toHaveLength(32);
  });

  test("40,000 statements get their lines in a fraction of the time a scan from the file's start for each took", () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => (i % 2 ? `insert into t values (${i}, 'größe ✓');` : `create table t_${i} (id int);`));
    const file = source(`${lines.join("\r\n")}\r\n`);
    const started = performance.now();
    const statements = parser.statements(file);
    // A generous bound: scanning from byte 0 for every statement took over 20 s here.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(statements.map((statement) => statement.line)).toEqual(lines.map((_, i) => i + 1));
    const last = statements.at(-1)!;
    // PostgreSQL's position 39 is the closing parenthesis, 38 characters in, however many bytes ö, ß and ✓ take.
    expect(locateInFile(file, last, 39)).toMatchObject({ line: 40_000, column: 39 });
  });
});

describe("config", () => {
  const parse = (argv: string[], env: Record<string, string>) => parseConfig(argv, env, false, layout, COMMANDS);

  test("defaults", () => {
    const config = parse([], { DATABASE_URL: "postgresql://u:p@h:5432/d" });
    expect(config).toMatchObject({
      command: { entry: { name: "up" }, options: { allowOutOfOrder: false } },
      migrationsDir: layout.migrationsDir,
      table: { schema: "platform", table: "schema_migrations" },
      logFormat: "json",
      lockWaitMs: 120_000,
      connectTimeoutMs: 30_000,
    });
  });

  test("every problem is reported together", () => {
    try {
      parse(["--nope"], { MIGRATIONS_TABLE: "Bad Name", LOG_FORMAT: "xml", MIGRATE_LOCK_WAIT: "soon" });
      throw new Error("expected ConfigError");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const text = (error as ConfigError).problems.join("\n");
      for (const name of ["--nope", "MIGRATIONS_TABLE", "LOG_FORMAT", "MIGRATE_LOCK_WAIT"]) expect(text).toContain(name);
    }
  });

  test("resolve needs one version and one action", () => {
    expect(parse(["resolve", "009", "--applied"], { DATABASE_URL: "postgres://h/d" })).toMatchObject({ command: { entry: { name: "resolve" }, options: { version: 9, action: "applied" } } });
    expect(() => parse(["resolve", "009", "--applied", "--forget"], { DATABASE_URL: "postgres://h/d" })).toThrow(ConfigError);
    expect(() => parse(["resolve"], { DATABASE_URL: "postgres://h/d" })).toThrow(ConfigError);
    expect(parse(["--help"], {})).toBe(HELP);
  });

  test("durations take PostgreSQL's units", () => {
    expect(parse([], { DATABASE_URL: "postgres://h/d", MIGRATE_LOCK_WAIT: "1.5s", MIGRATE_CONNECT_TIMEOUT: "2min" })).toMatchObject({
      lockWaitMs: 1_500,
      connectTimeoutMs: 120_000,
    });
  });
});

describe("version", () => {
  test("the job's version is package.json's", async () => {
    const packageJson = (await Bun.file(new URL("../../package.json", import.meta.url)).json()) as { name: string; version: string };
    expect({ name: JOB_NAME, version: JOB_VERSION }).toEqual({ name: packageJson.name, version: packageJson.version });
  });
});

describe("refusals", () => {
  test("problems that share one fix are listed together and the fix is said once; the others keep their own", () => {
    const same = "run bun release/migrate.ts status to see what is recorded";
    const error = new RefusedError([
      { check: "baseline", file: "001_a.sql", message: "already recorded", resolution: same },
      { check: "file", file: "002_b.sql", line: 3, message: "bad name", resolution: "rename it" },
      { check: "baseline", file: "003_c.sql", message: "already recorded", resolution: same },
      { check: "baseline", file: "004_d.sql", message: "already recorded", resolution: same },
    ]);
    expect(error.message).toBe(
      [
        "refusing to run (4 problems):",
        "  - 001_a.sql: already recorded",
        "  - 003_c.sql: already recorded",
        "  - 004_d.sql: already recorded",
        `    fix (for these 3): ${same}`,
        "  - 002_b.sql:3: bad name",
        "    fix: rename it",
      ].join("\n"),
    );
    expect(error.attributes()).toEqual({ checks: ["baseline", "file"], files: ["001_a.sql", "002_b.sql", "003_c.sql", "004_d.sql"] });
  });
});

describe("who runs the job outside Railway", () => {
  test("the login variables first; without them a name, never the uid of root or the word unknown", () => {
    expect(localUser({ USER: "alice", LOGNAME: "bob" })).toBe(`alice@${hostname()}`);
    expect(localUser({ LOGNAME: "bob" })).toBe(`bob@${hostname()}`);
    const unnamed = localUser({});
    expect(unnamed).toEndWith(`@${hostname()}`);
    expect(unnamed).not.toMatch(/^(uid 0|unknown)@/);
    if (userInfo().uid === 0) expect(unnamed).toBe(`root@${hostname()}`);
  });
});

describe("redaction", () => {
  test("removes the password in raw and encoded forms, and any URL credentials", () => {
    const redact = redactorFor("postgresql://app:s%40cret!@db:5432/x");
    expect(redact("failed for s@cret! and s%40cret! at postgres://other:pw@h/d")).toBe("failed for ******** and ******** at postgres://other:********@h/d");
  });

  test("describes a target without the password", () => {
    expect(describeTarget("postgresql://app:secret@db.example:6543/studio")).toBe("app@db.example:6543/studio");
  });
});

describe("durations for a person", () => {
  test("milliseconds, seconds, and minutes with whole seconds that never read 60", () => {
    expect([999, 1_000, 59_940, 60_000, 119_900, 119_400, 3_600_000].map(formatDuration)).toEqual(["999 ms", "1.0 s", "59.9 s", "1 min 0 s", "2 min 0 s", "1 min 59 s", "60 min 0 s"]);
  });
});
