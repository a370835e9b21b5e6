/**
 * The lint gate: squawk (the real binary) and the job's own rules over migration files written
 * here at run time, waivers, lint.toml, the MIGRATE_LINT relax switch, `check`'s text and JSON
 * output, the gate `up` runs, and the repository's own migrations 001-008.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./support/run-migrate.ts";
import { check } from "../src/commands/check.ts";
import { ConfigError, ExitCode, RefusedError } from "../src/shared/errors.ts";
import { readMigrationFolder, type MigrationFile } from "../src/files/migration-files.ts";
import { loadSqlParser, type SqlParser } from "../src/files/sql-statements.ts";
import type { Attributes, Logger } from "../src/shared/log.ts";
import { squawkRuleNames } from "../src/lint/catalog.ts";
import { enforceLintGate, lintMigrations } from "../src/lint/lint.ts";
import type { Finding, LintReport } from "../src/lint/findings.ts";
import { readLintConfig } from "../src/lint/lint-config.ts";
import { LintModeSchema, type LintMode } from "../src/shared/config.ts";
import { SquawkFailedError, type SquawkLocation } from "../src/lint/squawk.ts";
import { locateSquawk } from "../host/squawk-binary.ts";
import { machineHost } from "../host/host.ts";

const PLATFORM_MIGRATIONS = join(import.meta.dir, "..", "..", "apps", "studio", "database", "migrations");
const folders: string[] = [];

afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

/** Writes a migrations folder holding `files` and returns its path. */
async function fixture(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "lint-test-"));
  folders.push(dir);
  await Promise.all(Object.entries(files).map(([name, content]) => writeFile(join(dir, name), content)));
  return dir;
}

const { fs, squawk } = machineHost(join(REPO_ROOT, "release"));

async function readFiles(dir: string): Promise<MigrationFile[]> {
  return (await readMigrationFolder(dir, fs, { refuseIgnored: true })).files;
}

interface LogLine {
  readonly level: "info" | "warn" | "error";
  readonly event: string;
  readonly message: string;
  readonly attributes: Attributes;
}

function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine["level"]) => (event: string, message: string, attributes: Attributes = {}) => lines.push({ level, event, message, attributes });
  return { logger: { info: at("info"), warn: at("warn"), error: at("error") }, lines };
}

interface CheckResult {
  readonly code: ExitCode;
  readonly documents: string[];
  readonly lines: LogLine[];
}

async function runCheck(dir: string, options: { json?: boolean; mode?: LintMode; squawk?: SquawkLocation } = {}): Promise<CheckResult> {
  const { logger, lines } = captureLogger();
  const documents: string[] = [];
  const code = await check(
    {
      files: await readFiles(dir),
      migrationsDir: dir,
      fs,
      logger,
      writeDocument: (text) => documents.push(text),
      loadParser: loadSqlParser,
      lintMode: options.mode ?? "error",
      signal: new AbortController().signal,
      squawk: options.squawk ? { ...squawk, location: options.squawk } : squawk,
    },
    { json: options.json ?? false },
  );
  return { code, documents, lines };
}

async function lintFolder(dir: string, mode: LintMode = "error", location?: SquawkLocation): Promise<LintReport> {
  return lintMigrations(await readFiles(dir), { migrationsDir: dir, readFile: fs.readFile, loadParser: loadSqlParser, mode, squawk: location ? { ...squawk, location } : squawk });
}

/** file:line rule level, the way a person scans the output. */
function where(findings: readonly Finding[]): string[] {
  return findings.map((finding) => `${finding.file}:${finding.line} ${finding.rule} ${finding.level}`);
}

/** One migration per rule; none creates the table it changes, so squawk treats every table as live. */
const ONE_FILE_PER_RULE = {
  "001_security_definer.sql": "-- a definer function that trusts the caller's search_path\nCREATE FUNCTION app.whoami() RETURNS text\nLANGUAGE sql\nSECURITY DEFINER\nAS $$ SELECT current_user $$;\n",
  "002_transaction_control.sql": "-- commits the job's transaction early\nUPDATE app.accounts SET nickname = NULL;\nCOMMIT;\n",
  "003_concurrently.sql": "-- concurrently, in a transactional file\nCREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_idx ON app.accounts (email);\n",
  "004_drop_column.sql": "-- 004\nALTER TABLE app.accounts DROP COLUMN nickname;\n",
  "005_drop_table.sql": "-- 005\n\nDROP TABLE app.sessions;\n",
  "006_rename_column.sql": "-- 006\nALTER TABLE app.accounts RENAME COLUMN email TO email_address;\n",
  "007_rename_table.sql": "-- 007\nALTER TABLE app.sessions RENAME TO logins;\n",
  "008_change_type.sql": "-- 008\nALTER TABLE app.accounts\n    ALTER COLUMN id TYPE bigint;\n",
  "009_set_not_null.sql": "-- 009\nALTER TABLE app.accounts ALTER COLUMN email SET NOT NULL;\n",
  "010_add_required_column.sql": "-- 010\nALTER TABLE app.accounts ADD COLUMN plan text NOT NULL;\n",
  "011_foreign_key.sql": "-- 011\nALTER TABLE app.sessions\n    ADD CONSTRAINT sessions_account_fkey FOREIGN KEY (account_id) REFERENCES app.accounts (id);\n",
  "012_rename_view.sql": "-- 012\nALTER VIEW app.active_accounts RENAME TO live_accounts;\n",
  "013_drop_view.sql": "-- 013\nDROP VIEW app.active_accounts;\n",
  "014_move_schema.sql": "-- 014\nALTER TABLE app.sessions SET SCHEMA archive;\n",
  "015_typescript.ts": "export async function up() {}\n",
};

describe("check on one file per rule (squawk runs for real)", () => {
  test("reports each rule at its file and line, with the fix, and exits 4", async () => {
    const { code, documents, lines } = await runCheck(await fixture(ONE_FILE_PER_RULE));
    expect(code).toBe(ExitCode.refused);
    expect(documents).toHaveLength(1);
    const headlines = documents[0]!.split("\n").filter((line) => !line.startsWith("    "));
    expect(headlines).toEqual([
      "001_security_definer.sql:4: error security-definer-search-path: SECURITY DEFINER function without SET search_path: it runs with its owner's rights but looks names up through the caller's search_path",
      '002_transaction_control.sql:3: error transaction-control-in-transaction: transaction control statement "COMMIT" in a file that runs inside a transaction',
      "003_concurrently.sql:2: error concurrently-in-transaction: CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and the job runs this file in one",
      "004_drop_column.sql:2: error ban-drop-column: Dropping a column may break existing clients.",
      "005_drop_table.sql:3: error ban-drop-table: Dropping a table may break existing clients.",
      "006_rename_column.sql:2: error renaming-column: Renaming a column may break existing clients.",
      "007_rename_table.sql:2: error renaming-table: Renaming a table may break existing clients.",
      "008_change_type.sql:3: error changing-column-type: Changing a column type requires an `ACCESS EXCLUSIVE` lock on the table which blocks reads and writes while the table is rewritten. Changing the type of the column may also break other clients reading from the table.",
      "009_set_not_null.sql:2: error adding-not-nullable-field: Setting a column `NOT NULL` blocks reads while the table is scanned.",
      "010_add_required_column.sql:2: error adding-required-field: Adding a new column that is `NOT NULL` and has no default value to an existing table effectively makes it required.",
      "011_foreign_key.sql:3: error constraint-missing-not-valid: By default new constraints require a table scan and block writes to the table while that scan occurs.",
      "011_foreign_key.sql:3: error adding-foreign-key-constraint: Adding a foreign key constraint requires a table scan and a `SHARE ROW EXCLUSIVE` lock on both tables, which blocks writes to each table.",
      "012_rename_view.sql:2: error renaming-view: renaming view app.active_accounts breaks the release still serving, which queries it by its old name",
      "013_drop_view.sql:2: error dropping-view: dropping a view breaks the release still serving, which may query it",
      "014_move_schema.sql:2: error moving-to-another-schema: moving sessions to schema archive breaks the release still serving, which looks for it in its old schema",
      "015_typescript.ts: skipped (TypeScript migrations are not linted)",
    ]);
    expect(documents[0]).toContain(
      "004_drop_column.sql:2: error ban-drop-column: Dropping a column may break existing clients.\n    fix: the release still serving uses this column until the new one is live: first ship a release that no longer uses it, then drop it in a later migration\n",
    );
    expect(lines.at(-1)).toMatchObject({
      level: "info",
      event: "run_finished",
      message: "check: 14 files linted (1 TypeScript file skipped): 15 errors, 0 warnings, 0 waived (exit 4: fix each error, or waive it next to its statement with a reason)",
      attributes: { errors: 15, warnings: 0, waived: 0, relaxed: 0, files: 14, skipped: 1 },
    });
  });

  test("points at the clause squawk or the parser names, in characters from 1", async () => {
    const report = await lintFolder(await fixture(ONE_FILE_PER_RULE));
    const columns = report.findings.map((finding) => [finding.file, finding.line, finding.column, finding.source]);
    expect(columns).toContainEqual(["001_security_definer.sql", 4, 1, "job"]);
    expect(columns).toContainEqual(["004_drop_column.sql", 2, 26, "squawk"]);
    expect(columns).toContainEqual(["011_foreign_key.sql", 3, 5, "squawk"]);
    expect(columns).toContainEqual(["011_foreign_key.sql", 3, 9, "squawk"]);
  });

  test("a no-transaction file is linted as one (its index on a new table is not), a transactional one as a transaction", async () => {
    const body = "CREATE TABLE IF NOT EXISTS app.notes (id bigint);\nCREATE INDEX IF NOT EXISTS notes_id_idx ON app.notes (id);\n";
    const report = await lintFolder(
      await fixture({
        "001_in_transaction.sql": `-- the table is new in this transaction\n${body}`,
        "002_outside.sql": `-- migrate:no-transaction\n${body}`,
        "003_concurrent.sql": "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS notes_body_idx ON app.notes (id);\n",
      }),
    );
    expect(where(report.findings)).toEqual(["002_outside.sql:3 require-concurrent-index-creation error"]);
  });

  test("positions count characters after a byte-order mark and multi-byte text", async () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("/* für */ ALTER TABLE app.accounts DROP COLUMN nickname;\r\nALTER TABLE app.accounts DROP COLUMN é;\n")]);
    const report = await lintFolder(await fixture({ "001_bom.sql": bom }));
    expect(report.findings.map((finding) => [finding.line, finding.column, finding.rule])).toEqual([
      [1, 36, "ban-drop-column"],
      [2, 26, "ban-drop-column"],
    ]);
  });
});

describe("the job's own rules", () => {
  test("security definer: with a fixed search_path it passes; FROM CURRENT, ALTER FUNCTION and procedures are caught", async () => {
    const report = await lintFolder(
      await fixture({
        "001_functions.sql": [
          "CREATE FUNCTION app.ok() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, app AS 'select 1';",
          "CREATE FUNCTION app.invoker() RETURNS int LANGUAGE sql SECURITY INVOKER AS 'select 1';",
          "CREATE FUNCTION app.current() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS 'select 1';",
          "CREATE PROCEDURE app.p() LANGUAGE sql SECURITY DEFINER AS 'select 1';",
          "ALTER FUNCTION app.ok() SECURITY DEFINER;",
          "ALTER FUNCTION app.ok() SECURITY DEFINER SET search_path = pg_catalog;",
          "",
        ].join("\n"),
      }),
    );
    expect(report.findings.map((finding) => [finding.line, finding.rule, finding.message])).toEqual([
      [3, "security-definer-search-path", "SECURITY DEFINER function without SET search_path: it runs with its owner's rights but looks names up through the caller's search_path"],
      [4, "security-definer-search-path", "SECURITY DEFINER procedure without SET search_path: it runs with its owner's rights but looks names up through the caller's search_path"],
      [
        5,
        "security-definer-search-path",
        "SECURITY DEFINER function without SET search_path (if an earlier migration gave it one, waive this with that reason): it runs with its owner's rights but looks names up through the caller's search_path",
      ],
    ]);
  });

  test("CONCURRENTLY and transaction control are caught in a transactional file only", async () => {
    const statements = [
      "DROP INDEX CONCURRENTLY app.a_idx;",
      "REINDEX INDEX CONCURRENTLY app.b_idx;",
      "REINDEX (CONCURRENTLY false) INDEX app.c_idx;",
      "ALTER TABLE app.events DETACH PARTITION app.events_2024 CONCURRENTLY;",
      "SAVEPOINT before_cleanup;",
      "",
    ].join("\n");
    const report = await lintFolder(await fixture({ "001_in_transaction.sql": statements, "002_outside.sql": `-- migrate:no-transaction\n${statements}` }));
    const jobFindings = report.findings.filter((finding) => finding.source === "job");
    expect(where(jobFindings)).toEqual([
      "001_in_transaction.sql:1 concurrently-in-transaction error",
      "001_in_transaction.sql:2 concurrently-in-transaction error",
      "001_in_transaction.sql:4 concurrently-in-transaction error",
      "001_in_transaction.sql:5 transaction-control-in-transaction error",
    ]);
    expect(jobFindings.map((finding) => finding.message)).toEqual([
      "DROP INDEX CONCURRENTLY cannot run inside a transaction block, and the job runs this file in one",
      "REINDEX CONCURRENTLY cannot run inside a transaction block, and the job runs this file in one",
      "DETACH PARTITION … CONCURRENTLY cannot run inside a transaction block, and the job runs this file in one",
      'transaction control statement "SAVEPOINT before_cleanup" in a file that runs inside a transaction',
    ]);
  });

  test("views: renaming one or its column, dropping one, and moving any relation to another schema", async () => {
    const report = await lintFolder(
      await fixture({
        "001_views.sql": [
          "ALTER VIEW app.v RENAME COLUMN a TO b;",
          "ALTER MATERIALIZED VIEW app.m RENAME TO n;",
          "DROP MATERIALIZED VIEW IF EXISTS app.m;",
          "ALTER VIEW app.v SET SCHEMA archive;",
          "ALTER VIEW app.v ALTER COLUMN a SET DEFAULT 1;",
          "",
        ].join("\n"),
      }),
    );
    expect(report.findings.map((finding) => `${finding.line} ${finding.rule}: ${finding.message}`)).toEqual([
      "1 renaming-view: renaming column a of view app.v breaks the release still serving, which queries it by its old name",
      "2 renaming-view: renaming view app.m breaks the release still serving, which queries it by its old name",
      "3 dropping-view: dropping a view breaks the release still serving, which may query it",
      "4 moving-to-another-schema: moving v to schema archive breaks the release still serving, which looks for it in its old schema",
    ]);
  });
});

const WAIVERS = {
  "001_waivers.sql": [
    "-- 001: waivers next to their statements",
    "-- lint:allow ban-drop-column nickname has been unused since release 41",
    "ALTER TABLE app.accounts DROP COLUMN nickname;",
    "",
    "-- lint:allow ban-drop-table",
    "DROP TABLE app.sessions;",
    "",
    "ALTER TABLE app.accounts RENAME COLUMN email TO email_address; -- lint:allow renaming-column only the admin tool reads it, and it is stopped during deploys",
    "",
    "-- lint:allow renaming-table this statement renames no table",
    "ALTER TABLE app.accounts ALTER COLUMN id TYPE bigint;",
    "",
    "INSERT INTO app.notes (body) VALUES ('-- lint:allow ban-drop-column not a comment');",
    "ALTER TABLE app.accounts DROP COLUMN legacy;",
    "",
  ].join("\n"),
};

describe("waivers", () => {
  test("a reason silences its rule on its statement and is reported; without one it silences nothing and is an error", async () => {
    const report = await lintFolder(await fixture(WAIVERS));
    expect(report.findings.map((finding) => [finding.line, finding.rule, finding.level, finding.waived?.reason ?? null])).toEqual([
      [3, "ban-drop-column", "error", "nickname has been unused since release 41"],
      [5, "waiver-without-reason", "error", null],
      [6, "ban-drop-table", "error", null],
      [8, "renaming-column", "error", "only the admin tool reads it, and it is stopped during deploys"],
      [10, "stale-waiver", "warning", null],
      [11, "changing-column-type", "error", null],
      [14, "ban-drop-column", "error", null],
    ]);
    const messages = Object.fromEntries(report.findings.map((finding) => [finding.line, finding.message]));
    expect(messages[5]).toBe("the waiver for ban-drop-table gives no reason, so it does not silence ban-drop-table");
    expect(messages[10]).toBe("the waiver for renaming-table silences nothing: renaming-table did not fire on this statement");
  });

  test("check shows waived findings with their reason, and still exits 4 for what is left", async () => {
    const { code, documents } = await runCheck(await fixture(WAIVERS));
    expect(code).toBe(ExitCode.refused);
    expect(documents[0]!.split("\n").slice(0, 6)).toEqual([
      "001_waivers.sql:3: waived ban-drop-column: Dropping a column may break existing clients.",
      "    reason: nickname has been unused since release 41",
      "001_waivers.sql:5: error waiver-without-reason: the waiver for ban-drop-table gives no reason, so it does not silence ban-drop-table",
      "    fix: write why the rule does not apply after its name: -- lint:allow <rule> <reason>",
      "001_waivers.sql:6: error ban-drop-table: Dropping a table may break existing clients.",
      "    fix: the release still serving uses this table until the new one is live: first ship a release that no longer uses it, then drop it in a later migration",
    ]);
  });

  test("a waiver below the last statement, naming no rule, or naming an unknown rule is reported", async () => {
    const report = await lintFolder(
      await fixture({
        "001_odd_waivers.sql": "-- lint:allow\n-- lint:allow ban-drop-colum a typo\nALTER TABLE app.accounts ADD COLUMN note text;\n-- lint:allow ban-drop-table after everything\n",
      }),
    );
    expect(report.findings.map((finding) => `${finding.line} ${finding.rule} ${finding.level}: ${finding.message}`)).toEqual([
      '1 waiver-without-reason error: "-- lint:allow" names no rule and gives no reason; write it as -- lint:allow <rule> <reason>',
      "2 stale-waiver warning: the waiver names ban-drop-colum, which is not a lint rule",
      "4 stale-waiver warning: the waiver for ban-drop-table is below the last statement, so it applies to none",
    ]);
  });
});

describe("what no waiver can silence", () => {
  test("transaction control and CONCURRENTLY in a transactional file: the fix offers no waiver, and a waiver for them says it silences nothing", async () => {
    const dir = await fixture({
      "001_commits.sql": "CREATE TABLE app.t (id bigint);\n-- lint:allow transaction-control-in-transaction we really mean it\nCOMMIT;\n",
      "002_concurrently.sql": "-- lint:allow concurrently-in-transaction trust me\nCREATE INDEX CONCURRENTLY t_id ON app.t (id);\n",
    });
    const { logger } = captureLogger();
    const error = await enforceLintGate(await readFiles(dir), { migrationsDir: dir, readFile: fs.readFile, squawk, loadParser: loadSqlParser, mode: "error" }, logger).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RefusedError);
    expect((error as RefusedError).exitCode).toBe(ExitCode.refused);
    const refusals = (error as RefusedError).refusals.map((refusal) => `${refusal.file}:${refusal.line} ${refusal.message} | ${refusal.resolution}`);
    expect(refusals).toEqual([
      '001_commits.sql:3 transaction-control-in-transaction: transaction control statement "COMMIT" in a file that runs inside a transaction | remove it (the job wraps each file in one transaction), or add -- migrate:no-transaction at the top of the file',
      "002_concurrently.sql:2 concurrently-in-transaction: CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and the job runs this file in one | PostgreSQL refuses CONCURRENTLY inside a transaction block: move the statement to a file of its own that starts with -- migrate:no-transaction",
    ]);
    const report = await lintFolder(dir);
    expect(report.findings.filter((finding) => finding.rule === "stale-waiver").map((finding) => `${finding.file}:${finding.line} ${finding.message}`)).toEqual([
      "001_commits.sql:2 the waiver for transaction-control-in-transaction silences nothing: no waiver can, as the job refuses a transactional file that ends or opens a transaction itself, whatever the lint says",
      "002_concurrently.sql:1 the waiver for concurrently-in-transaction silences nothing: no waiver can, as PostgreSQL refuses CONCURRENTLY inside a transaction block, whatever the lint says",
    ]);
  });
});

describe("where a waiver counts", () => {
  test("inside its statement, next to the clause at fault; after a statement, for the last one on that line", async () => {
    const report = await lintFolder(
      await fixture({
        "001_a.sql": [
          "CREATE TABLE app.servers (",
          "    -- lint:allow prefer-bigint-over-int a port number is at most 65535",
          "    port integer NOT NULL",
          ");",
          "ALTER TABLE app.a DROP COLUMN b; ALTER TABLE app.a DROP COLUMN c; -- lint:allow ban-drop-column c was never written",
          "",
        ].join("\n"),
      }),
    );
    expect(report.findings.map((finding) => [finding.line, finding.column, finding.rule, finding.waived?.reason ?? null])).toEqual([
      [3, 10, "prefer-bigint-over-int", "a port number is at most 65535"],
      [5, 19, "ban-drop-column", null],
      [5, 52, "ban-drop-column", "c was never written"],
    ]);
  });
});

describe("the relax switch, MIGRATE_LINT=warn", () => {
  test("reports errors as warnings, names the switch on every affected line, and passes", async () => {
    const { code, documents, lines } = await runCheck(await fixture(WAIVERS), { mode: "warn" });
    expect(code).toBe(ExitCode.success);
    const headlines = documents[0]!.split("\n").filter((line) => !line.startsWith("    "));
    expect(headlines).toEqual([
      "001_waivers.sql:3: waived ban-drop-column: Dropping a column may break existing clients.",
      "001_waivers.sql:5: warning waiver-without-reason (relaxed by MIGRATE_LINT=warn): the waiver for ban-drop-table gives no reason, so it does not silence ban-drop-table",
      "001_waivers.sql:6: warning ban-drop-table (relaxed by MIGRATE_LINT=warn): Dropping a table may break existing clients.",
      "001_waivers.sql:8: waived renaming-column: Renaming a column may break existing clients.",
      "001_waivers.sql:10: warning stale-waiver: the waiver for renaming-table silences nothing: renaming-table did not fire on this statement",
      "001_waivers.sql:11: warning changing-column-type (relaxed by MIGRATE_LINT=warn): Changing a column type requires an `ACCESS EXCLUSIVE` lock on the table which blocks reads and writes while the table is rewritten. Changing the type of the column may also break other clients reading from the table.",
      "001_waivers.sql:14: warning ban-drop-column (relaxed by MIGRATE_LINT=warn): Dropping a column may break existing clients.",
    ]);
    expect(lines.map((line) => [line.level, line.event, line.message])).toEqual([
      ["warn", "lint_relaxed", "lint gate relaxed by MIGRATE_LINT=warn: 4 errors reported as warnings for this run"],
      ["info", "run_finished", "check: 1 file linted: 0 errors, 5 warnings (4 errors among them, relaxed by MIGRATE_LINT=warn), 2 waived"],
    ]);
  });

  test("says it is set even when there is nothing to relax", async () => {
    const { code, lines } = await runCheck(await fixture({ "001_a.sql": "ALTER TABLE app.a ADD COLUMN b text;\n" }), { mode: "warn" });
    expect(code).toBe(ExitCode.success);
    expect(lines.map((line) => [line.level, line.event, line.message])).toEqual([
      ["warn", "lint_relaxed", "lint gate relaxed by MIGRATE_LINT=warn: no error to report as a warning this time; remove the variable"],
      ["info", "run_finished", "check: 1 file linted: 0 errors, 0 warnings, 0 waived"],
    ]);
  });

  test("MIGRATE_LINT takes warn or error, and defaults to error", () => {
    expect(LintModeSchema.parse(undefined)).toBe("error");
    expect(LintModeSchema.parse("warn")).toBe("warn");
    const bad = LintModeSchema.safeParse("off");
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toBe('must be "warn" (report lint errors as warnings for this run) or "error" (the default)');
  });
});

describe("lint.toml", () => {
  test("sets rule levels: a warning does not block, an off rule is not reported and its waiver is stale", async () => {
    const dir = await fixture({
      "lint.toml": '[rules]\nban-drop-column = "warning"\nrenaming-column = "off"\n',
      "001_x.sql": "ALTER TABLE app.accounts DROP COLUMN nickname;\n-- lint:allow renaming-column the old name stays as a view\nALTER TABLE app.accounts RENAME COLUMN email TO email_address;\n",
    });
    const { code } = await runCheck(dir);
    expect(code).toBe(ExitCode.success);
    const report = await lintFolder(dir);
    expect(where(report.findings)).toEqual(["001_x.sql:1 ban-drop-column warning", "001_x.sql:2 stale-waiver warning"]);
    expect(report.findings[1]!.message).toBe("the waiver for renaming-column silences nothing: lint.toml turns renaming-column off");
    expect(report.configPath).toBe(join(dir, "lint.toml"));
  });

  test("an unknown rule and a bad level are refused together, naming the file (exit 2)", async () => {
    const dir = await fixture({ "lint.toml": '[rules]\nban-drop-colum = "error"\nban-drop-table = "fatal"\n', "001_x.sql": "SELECT 1;\n" });
    const error = await runCheck(dir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    const path = join(dir, "lint.toml");
    expect((error as ConfigError).problems).toEqual([
      `${path}: unknown rule "ban-drop-colum" (README.md, "The lint gate", lists the rules)`,
      `${path}: ban-drop-table: the level must be "error", "warning" or "off", not "fatal"`,
    ]);
    expect((error as ConfigError).exitCode).toBe(ExitCode.usage);
  });

  test("a table other than [rules], and text that is not TOML, are refused naming the file; no file means defaults", async () => {
    const read = (text: string) => async () => new TextEncoder().encode(text);
    await expect(readLintConfig("/m", read('[levels]\nban-drop-table = "off"\n'))).rejects.toThrow('configuration problem: /m/lint.toml: unknown key "levels": the file holds only a [rules] table');
    await expect(readLintConfig("/m", read("[rules\n"))).rejects.toThrow("configuration problem: /m/lint.toml: not valid TOML:");
    const missing = await readLintConfig(await fixture({}), (path) => readFile(path));
    expect(missing).toEqual({ path: undefined, levels: new Map() });
  });
});

describe("check's JSON document", () => {
  test("one document with every finding, the files, the switch and the counts", async () => {
    const dir = await fixture({
      "001_a.sql": "-- lint:allow ban-drop-column nothing reads it\nALTER TABLE app.a DROP COLUMN b;\nALTER TABLE app.a DROP COLUMN c;\n",
      "002_b.ts": "export async function up() {}\n",
    });
    const { code, documents } = await runCheck(dir, { json: true });
    expect(code).toBe(ExitCode.refused);
    expect(JSON.parse(documents[0]!)).toEqual({
      files: ["001_a.sql"],
      skipped: [{ file: "002_b.ts", reason: "TypeScript migrations are not linted" }],
      findings: [
        {
          file: "001_a.sql",
          line: 2,
          column: 19,
          rule: "ban-drop-column",
          level: "error",
          source: "squawk",
          message: "Dropping a column may break existing clients.",
          fix: "the release still serving uses this column until the new one is live: first ship a release that no longer uses it, then drop it in a later migration",
          waived: { reason: "nothing reads it" },
          relaxed: false,
        },
        {
          file: "001_a.sql",
          line: 3,
          column: 19,
          rule: "ban-drop-column",
          level: "error",
          source: "squawk",
          message: "Dropping a column may break existing clients.",
          fix: "the release still serving uses this column until the new one is live: first ship a release that no longer uses it, then drop it in a later migration",
          waived: null,
          relaxed: false,
        },
      ],
      notices: [],
      squawk_ran: true,
      config: null,
      relaxed_by: null,
      summary: { errors: 1, warnings: 0, waived: 1, relaxed: 0, files: 1, skipped: 1 },
    });
  });
});

describe("the repository's migrations", () => {
  test("001-008 pass: no errors, two int warnings, and two waivers with their reasons", async () => {
    const { code, documents } = await runCheck(PLATFORM_MIGRATIONS);
    expect(code).toBe(ExitCode.success);
    expect(documents[0]!.split("\n")).toEqual([
      "002_platform_billing_schema.sql:10: warning prefer-bigint-over-int: Using 32-bit integer fields can result in hitting the max `int` limit.",
      "    fix: Use 64-bit integer values instead to prevent hitting this limit.",
      "006_add_platform_databases_table.sql:10: warning prefer-bigint-over-int: Using 32-bit integer fields can result in hitting the max `int` limit.",
      "    fix: Use 64-bit integer values instead to prevent hitting this limit.",
      "008_add_active_org_tracking.sql:19: waived constraint-missing-not-valid: Using `NOT VALID` and `VALIDATE CONSTRAINT` in the same transaction will block all reads while the constraint is validated.",
      "    reason: the ADD COLUMN above holds ACCESS EXCLUSIVE on platform.users until commit anyway, and the new column is all NULL, so validating here takes no new lock and rejects no row",
      "008_add_active_org_tracking.sql:36: waived require-concurrent-index-creation: During normal index creation, table updates are blocked, but reads are still allowed.",
      "    reason: this transaction holds ACCESS EXCLUSIVE on platform.users since the ADD COLUMN above, so a plain build blocks nothing more, and the table has one row per Studio user, so it takes milliseconds",
    ]);
  });
});

describe("the gate up runs", () => {
  const deps = (dir: string, loadParser: () => Promise<SqlParser> = loadSqlParser) => ({ migrationsDir: dir, readFile: fs.readFile, squawk, loadParser, mode: "error" as const });

  test("with nothing pending it does nothing: no parser, no squawk, no log line", async () => {
    const { logger, lines } = captureLogger();
    const loadParser = () => Promise.reject(new Error("the parser must not be loaded"));
    const report = await enforceLintGate([], deps(PLATFORM_MIGRATIONS, loadParser), logger);
    expect(report).toEqual({ linted: [], skipped: [], findings: [], notices: [], squawkRan: false, mode: "error", configPath: undefined });
    expect(lines).toEqual([]);
  });

  test("refuses (exit 4) with every error as file:line, rule and fix; logs warnings and waivers one a line", async () => {
    const dir = await fixture({
      "001_a.sql": "CREATE TABLE app.t (port integer);\n-- lint:allow ban-drop-column nothing reads it\nALTER TABLE app.a DROP COLUMN b;\n",
      "002_b.sql": "-- lint:allow renaming-table\nALTER TABLE app.a RENAME TO c;\n",
    });
    const { logger, lines } = captureLogger();
    const error = await enforceLintGate(await readFiles(dir), deps(dir), logger).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RefusedError);
    expect((error as RefusedError).exitCode).toBe(ExitCode.refused);
    expect((error as RefusedError).refusals).toEqual([
      {
        check: "lint",
        file: "002_b.sql",
        line: 1,
        message: "waiver-without-reason: the waiver for renaming-table gives no reason, so it does not silence renaming-table",
        resolution: "write why the rule does not apply after its name: -- lint:allow <rule> <reason>",
      },
      {
        check: "lint",
        file: "002_b.sql",
        line: 2,
        message: "renaming-table: Renaming a table may break existing clients.",
        resolution:
          "the serving release still queries the old name: create the new table (or a view under the new name), switch the code, and remove the old name in a later migration; if the rule does not apply here, say why above the statement: -- lint:allow renaming-table <reason>",
      },
    ]);
    expect(lines.map((line) => [line.level, line.event, line.message])).toEqual([
      ["warn", "lint_warning", "lint 001_a.sql:1: prefer-bigint-over-int: Using 32-bit integer fields can result in hitting the max `int` limit. (fix: Use 64-bit integer values instead to prevent hitting this limit.)"],
      ["info", "lint_waived", "lint 001_a.sql:3: ban-drop-column waived: nothing reads it"],
      ["info", "lint_finished", "lint: 2 files linted: 2 errors, 1 warning, 1 waived"],
    ]);
    expect(lines[1]!.attributes).toEqual({ file: "001_a.sql", line: 3, column: 19, rule: "ban-drop-column", source: "squawk", rule_level: "error", relaxed: undefined, reason: "nothing reads it" });
  });

  test("relaxed, it passes and logs each former error as a warning naming MIGRATE_LINT=warn", async () => {
    const dir = await fixture({ "001_a.sql": "ALTER TABLE app.a RENAME TO c;\n" });
    const { logger, lines } = captureLogger();
    await enforceLintGate(await readFiles(dir), { ...deps(dir), mode: "warn" }, logger);
    expect(lines.map((line) => [line.level, line.event, line.message])).toEqual([
      [
        "warn",
        "lint_warning",
        "lint 001_a.sql:1: renaming-table (relaxed by MIGRATE_LINT=warn): Renaming a table may break existing clients. (fix: the serving release still queries the old name: create the new table (or a view under the new name), switch the code, and remove the old name in a later migration)",
      ],
      ["warn", "lint_relaxed", "lint gate relaxed by MIGRATE_LINT=warn: 1 error reported as warnings for this run"],
      ["info", "lint_finished", "lint: 1 file linted: 0 errors, 1 warning (1 error among them, relaxed by MIGRATE_LINT=warn), 0 waived"],
    ]);
  });
});

describe("squawk itself", () => {
  test("every squawk rule the catalog lists is one the installed squawk knows", async () => {
    const location = locateSquawk(join(REPO_ROOT, "release"));
    if (!("binary" in location)) throw new Error(location.unavailable);
    // syntax-error is what squawk calls a statement it cannot parse, not a rule it can switch off.
    const names = squawkRuleNames().filter((name) => name !== "syntax-error");
    const child = Bun.spawn([location.binary, "--config", "/dev/null", `--exclude=${names.join(",")}`, "--reporter", "json", "--stdin-filepath", "x.sql"], {
      stdin: new TextEncoder().encode("SELECT 1;\n"),
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await new Response(child.stderr).text()).toBe("");
    expect(await child.exited).toBe(0);
  });

  test("without a binary for this platform: a notice, the job's rules still run, and waivers for squawk's rules are not called stale", async () => {
    const unavailable = locateSquawk(join(REPO_ROOT, "release"), "darwin", "arm64");
    expect(unavailable).toEqual({
      unavailable:
        "squawk has no binary installed for darwin-arm64 (@squawk-cli/darwin-arm64 is not in node_modules; package.json installs only @squawk-cli/linux-x64), so only the job's own rules ran",
    });
    const dir = await fixture({ "001_a.sql": "-- lint:allow ban-drop-column nothing reads it\nALTER TABLE app.a DROP COLUMN b;\nDROP VIEW app.v;\n" });
    const { code, documents, lines } = await runCheck(dir, { squawk: unavailable });
    expect(code).toBe(ExitCode.refused);
    expect(documents).toEqual([
      "001_a.sql:3: error dropping-view: dropping a view breaks the release still serving, which may query it\n    fix: the release still serving uses this view until the new one is live: first ship a release that no longer uses it, then drop it in a later migration",
    ]);
    expect(lines[0]).toMatchObject({ level: "warn", event: "lint_notice", message: `lint: ${"unavailable" in unavailable ? unavailable.unavailable : ""}` });
  });

  test("a squawk that cannot read its files refuses the gate (exit 4), unless relaxed", async () => {
    const dir = await fixture({ "001_a.sql": "ALTER TABLE app.a DROP COLUMN b;\n" });
    const files = await readFiles(dir);
    await rm(join(dir, "001_a.sql"));
    const lint = (mode: LintMode) => lintMigrations(files, { migrationsDir: dir, readFile: fs.readFile, squawk, loadParser: loadSqlParser, mode });
    const error = await lint("error").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SquawkFailedError);
    expect((error as SquawkFailedError).exitCode).toBe(ExitCode.refused);
    expect((error as SquawkFailedError).message).toStartWith("squawk could not lint 001_a.sql: exit 1: ");
    const relaxed = await lint("warn");
    expect(relaxed.squawkRan).toBe(false);
    expect(relaxed.notices).toHaveLength(1);
    expect(relaxed.notices[0]).toEndWith("only the job's own rules ran (relaxed by MIGRATE_LINT=warn)");
  });
});
