/**
 * The read-only operator commands, through the job's main() against a real PostgreSQL:
 * `status` shows every migration's state, `plan` shows what `up` would do, and neither changes the
 * database in any way.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { type TestDatabase, useTestServer } from "./support/postgres.ts";
import { migrationsFolder, type RunResult } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { catalogPicture, tableExists } from "./support/catalog.ts";
import { loadSqlParser } from "../src/files/sql-statements.ts";
import { summarizeStatement } from "../src/files/statement-summary.ts";

const server = useTestServer();

const Checksum = z.string().regex(/^[0-9a-f]{64}$/);
const Count = z.number().int().nonnegative();

const RefusalSchema = z.strictObject({
  check: z.string(),
  file: z.string(),
  line: z.number().int().positive().nullable(),
  message: z.string().min(1),
  resolution: z.string().min(1),
});

const StatusSchema = z.strictObject({
  table: z.literal("platform.schema_migrations"),
  migrations: z.array(
    z.strictObject({
      version: z.number().int().positive(),
      name: z.string(),
      file: z.string().nullable(),
      language: z.enum(["sql", "typescript"]).nullable(),
      transactional: z.boolean(),
      state: z.enum(["applied", "pending", "held", "failed", "changed", "missing", "out_of_order", "record_lost"]),
      applied_at: z.iso.datetime().nullable(),
      applied_by: z.string().nullable(),
      execution_ms: Count.nullable(),
      hold_reason: z.string().nullable(),
      error: z.string().nullable(),
      interrupted: z.boolean(),
      checksum: z.strictObject({ file: Checksum.nullable(), recorded: Checksum.nullable() }),
      refusal: RefusalSchema.nullable(),
    }),
  ),
  summary: z.strictObject({
    applied: Count,
    pending: Count,
    held: Count,
    failed: Count,
    changed: Count,
    missing: Count,
    out_of_order: Count,
    record_lost: Count,
    total: Count,
  }),
  runs: z.array(
    z.strictObject({
      command: z.string(),
      started_at: z.iso.datetime(),
      finished_at: z.iso.datetime().nullable(),
      outcome: z.enum(["running", "succeeded", "failed", "refused", "cancelled", "unavailable"]),
      applied: Count.nullable(),
      error_code: z.string().nullable(),
      error: z.string().nullable(),
      applied_by: z.string(),
      deployment_id: z.string().nullable(),
      lost_attempts: Count,
    }),
  ),
  drift: z.strictObject({ since: z.iso.datetime().nullable(), differences: z.array(z.string().min(1)) }).nullable(),
});

const PlanSchema = z.strictObject({
  table: z.literal("platform.schema_migrations"),
  outcome: z.enum(["apply", "nothing_to_do", "refuse"]),
  would_apply: z.array(
    z.strictObject({
      version: z.number().int().positive(),
      name: z.string(),
      file: z.string(),
      language: z.enum(["sql", "typescript"]),
      mode: z.enum(["one_transaction", "no_transaction"]),
      out_of_order: z.enum(["released hold", "allowed by flag"]).nullable(),
      statements: z.array(z.strictObject({ line: z.number().int().positive(), kind: z.string(), summary: z.string().min(1) })),
    }),
  ),
  held: z.array(z.strictObject({ version: z.number().int().positive(), name: z.string(), file: z.string(), reason: z.string().min(1) })),
  refusals: z.array(RefusalSchema),
});

/** `--json` output: exactly one line on stdout, holding one document that fits `schema`. */
function jsonDocument<T>(result: RunResult, schema: z.ZodType<T>): T {
  const lines = result.stdout.split("\n");
  expect(lines.length).toBe(2);
  expect(lines[1]).toBe("");
  return schema.parse(JSON.parse(lines[0]!));
}

function sha256(text: string): string {
  return new Bun.CryptoHasher("sha256").update(text).digest("hex");
}

function runFinished(result: RunResult) {
  const finished = result.events.filter((event) => event.event === "run_finished");
  expect(finished).toHaveLength(1);
  return finished[0]!;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const create = (table: string) => `create table ${table} (id int primary key);\n`;
const typescriptCreate = (table: string) => `import type { TransactionSql } from "postgres";

export async function up(sql: TransactionSql) {
  await sql\`create table ${table} (id int)\`;
}
`;
const failingPartWay = "-- migrate:no-transaction\ncreate table partial_a (id int);\nselect missing_column from partial_a;\n";

describe("status", () => {
  const original = {
    "001_first.sql": create("first"),
    "002_second.sql": create("second"),
    "003_third.sql": create("third"),
    "004_fourth.ts": typescriptCreate("fourth"),
    "006_sixth.sql": create("sixth"),
    "007_later.sql": "-- migrate:hold waiting for the session middleware\ncreate table later (id int);\n",
  };
  const edited = `${original["002_second.sql"]}-- an edit after it was applied\n`;
  /** One database with every state at once, built the way it happens in real life. */
  let allStates: { db: TestDatabase; dir: string };

  beforeAll(async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder(original);
    const deploy = (id: string) => runMain([], { url: db.url, migrationsDir: dir, env: { RAILWAY_DEPLOYMENT_ID: id } });
    expect((await deploy("deploy-1")).code).toBe(0);
    await writeFile(join(dir, "008_partial.sql"), failingPartWay);
    expect((await deploy("deploy-2")).code).toBe(1);

    await writeFile(join(dir, "002_second.sql"), edited);
    await rm(join(dir, "003_third.sql"));
    await writeFile(join(dir, "005_late.sql"), create("late"));
    await writeFile(join(dir, "009_next.sql"), create("next"));
    allStates = { db, dir };
  });

  const runStatus = (args: string[]) => runMain(["status", ...args], { url: allStates.db.url, migrationsDir: allStates.dir });

  test("--json gives every migration in every state, with its history, and changes nothing", async () => {
    const before = await catalogPicture(allStates.db.sql);
    const result = await runStatus(["--json"]);
    expect(result.code).toBe(0);
    const document = jsonDocument(result, StatusSchema);
    expect(await catalogPicture(allStates.db.sql)).toBe(before);

    const first = "railway deployment deploy-1";
    expect(
      document.migrations.map((m) => ({
        version: m.version,
        file: m.file,
        language: m.language,
        transactional: m.transactional,
        state: m.state,
        applied_by: m.applied_by,
        hold_reason: m.hold_reason,
        interrupted: m.interrupted,
        refusal: m.refusal?.check ?? null,
      })),
    ).toEqual([
      { version: 1, file: "001_first.sql", language: "sql", transactional: true, state: "applied", applied_by: first, hold_reason: null, interrupted: false, refusal: null },
      { version: 2, file: "002_second.sql", language: "sql", transactional: true, state: "changed", applied_by: first, hold_reason: null, interrupted: false, refusal: "drift" },
      { version: 3, file: null, language: null, transactional: true, state: "missing", applied_by: first, hold_reason: null, interrupted: false, refusal: "missing" },
      { version: 4, file: "004_fourth.ts", language: "typescript", transactional: true, state: "applied", applied_by: first, hold_reason: null, interrupted: false, refusal: null },
      { version: 5, file: "005_late.sql", language: "sql", transactional: true, state: "out_of_order", applied_by: null, hold_reason: null, interrupted: false, refusal: "order" },
      { version: 6, file: "006_sixth.sql", language: "sql", transactional: true, state: "applied", applied_by: first, hold_reason: null, interrupted: false, refusal: null },
      { version: 7, file: "007_later.sql", language: "sql", transactional: true, state: "held", applied_by: null, hold_reason: "waiting for the session middleware", interrupted: false, refusal: null },
      { version: 8, file: "008_partial.sql", language: "sql", transactional: false, state: "failed", applied_by: "railway deployment deploy-2", hold_reason: null, interrupted: false, refusal: "failed" },
      { version: 9, file: "009_next.sql", language: "sql", transactional: true, state: "pending", applied_by: null, hold_reason: null, interrupted: false, refusal: null },
    ]);
    expect(document.summary).toEqual({ applied: 3, pending: 1, held: 1, failed: 1, changed: 1, missing: 1, out_of_order: 1, record_lost: 0, total: 9 });

    const byVersion = new Map(document.migrations.map((m) => [m.version, m]));
    // Only a migration that was applied has a time and a duration.
    expect(document.migrations.filter((m) => m.applied_at !== null).map((m) => m.version)).toEqual([1, 2, 3, 4, 6]);
    expect(document.migrations.filter((m) => m.execution_ms !== null).map((m) => m.version)).toEqual([1, 2, 3, 4, 6]);
    expect(byVersion.get(2)!.checksum).toEqual({ file: sha256(edited), recorded: sha256(original["002_second.sql"]) });
    expect(byVersion.get(3)!.checksum).toEqual({ file: null, recorded: sha256(original["003_third.sql"]) });
    expect(byVersion.get(9)!.checksum).toEqual({ file: sha256(create("next")), recorded: null });
    expect(byVersion.get(8)!.error).toStartWith('008_partial.sql:3:8: column "missing_column" does not exist (SQLSTATE 42703)');
    // The run history, newest first: deploy-2 failed on 008 after deploy-1 applied 5 migrations.
    expect(document.runs.map((r) => ({ command: r.command, outcome: r.outcome, applied: r.applied, deployment_id: r.deployment_id, error_code: r.error_code }))).toEqual([
      { command: "up", outcome: "failed", applied: 0, deployment_id: "deploy-2", error_code: "42703" },
      { command: "up", outcome: "succeeded", applied: 5, deployment_id: "deploy-1", error_code: null },
    ]);
    expect(byVersion.get(3)!.refusal!.resolution).toContain("resolve 3 --forget");
    expect(byVersion.get(5)!.refusal!.resolution).toContain("--allow-out-of-order");

    // The document alone is on stdout; the summary line is a log event on stderr.
    expect(result.stderr).toContain('"event":"run_finished"');
    expect(runFinished(result)).toMatchObject({ level: "info", applied: 3, pending: 1, held: 1, failed: 1, changed: 1, missing: 1, out_of_order: 1, record_lost: 0, total: 9 });
  });

  test("the text table names every file with its state, then each refusal with its fix", async () => {
    const before = await catalogPicture(allStates.db.sql);
    const result = await runStatus([]);
    expect(result.code).toBe(0);
    expect(await catalogPicture(allStates.db.sql)).toBe(before);
    const rows: [string, string, string, string][] = [
      ["001", "001_first.sql", "transaction", "applied"],
      ["002", "002_second.sql", "transaction", "changed"],
      ["003", "003_third (no file)", "transaction", "missing"],
      ["004", "004_fourth.ts", "transaction", "applied"],
      ["005", "005_late.sql", "transaction", "out_of_order"],
      ["006", "006_sixth.sql", "transaction", "applied"],
      ["007", "007_later.sql", "transaction", "held"],
      ["008", "008_partial.sql", "no transaction", "failed"],
      ["009", "009_next.sql", "transaction", "pending"],
    ];
    const lines = result.stdout.split("\n");
    const header = lines.findIndex((line) => /^VERSION +FILE +MODE +STATE +DETAIL$/.test(line));
    expect(header).toBeGreaterThanOrEqual(0);
    rows.forEach((cells, index) => {
      expect(lines[header + 1 + index]).toMatch(new RegExp(`^${cells.map(escapeRegExp).join(" +")}( |$)`));
    });
    expect(lines[header + 1]).toMatch(/applied \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by railway deployment deploy-1 in \d+ ms$/);
    expect(lines[header + 7]).toEndWith("hold: waiting for the session middleware");
    expect(result.stdout).toContain("up would refuse (4 problems):");
    for (const fix of ["resolve 2 --accept-checksum", "resolve 3 --forget", "up --allow-out-of-order", "resolve 8 --rolled-back"]) expect(result.stdout).toContain(fix);
    expect(runFinished(result).message).toBe("status: 9 migrations: 3 applied, 1 pending, 1 held, 1 failed, 1 changed, 1 missing, 1 out of order");
  });

  test("--exit-code exits 4 when anything needs attention", async () => {
    const result = await runStatus(["--exit-code"]);
    expect(result.code).toBe(4);
    expect(runFinished(result).message).toContain("(exit 4:");
  });

  test("--exit-code exits 0 on a fully applied database (held files do not count), 4 once one file is pending", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({
      "001_first.sql": create("first"),
      "002_held.sql": "-- migrate:hold not yet\ncreate table held (id int);\n",
    });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    const clean = await runMain(["status", "--exit-code", "--json"], { url: db.url, migrationsDir: dir });
    expect(clean.code).toBe(0);
    expect(jsonDocument(clean, StatusSchema).summary).toEqual({ applied: 1, pending: 0, held: 1, failed: 0, changed: 0, missing: 0, out_of_order: 0, record_lost: 0, total: 2 });

    await writeFile(join(dir, "003_next.sql"), create("next"));
    expect((await runMain(["status", "--exit-code"], { url: db.url, migrationsDir: dir })).code).toBe(4);
    expect((await runMain(["status"], { url: db.url, migrationsDir: dir })).code).toBe(0);
  });

  test("a no-transaction migration whose run died part-way shows as failed and interrupted", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_partial.sql": failingPartWay });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(1);
    // What a run killed mid-file leaves behind: the row it committed before starting, still `running`.
    await db.sql`update platform.schema_migrations set status = 'running', last_error = null where version = 1`;
    const result = await runMain(["status", "--json"], { url: db.url, migrationsDir: dir });
    const [migration] = jsonDocument(result, StatusSchema).migrations;
    expect(migration).toMatchObject({ state: "failed", interrupted: true, error: null, transactional: false, applied_at: null });
    expect(migration!.refusal!.message).toContain("interrupted part-way");
    const text = await runMain(["status"], { url: db.url, migrationsDir: dir });
    expect(text.stdout).toMatch(/^001 +001_partial\.sql +no transaction +failed +interrupted part-way \(run by /m);
  });

  test("on a fresh database it shows the platform migrations pending and 007 held, without creating the tracking table", async () => {
    const db = await server.fresh();
    const before = await catalogPicture(db.sql);
    const result = await runMain(["status", "--json"], { url: db.url });
    expect(result.code).toBe(0);
    const { migrations } = jsonDocument(result, StatusSchema);
    expect(migrations.map((m) => [m.version, m.state])).toEqual([
      [1, "pending"],
      [2, "pending"],
      [3, "pending"],
      [4, "pending"],
      [5, "pending"],
      [6, "pending"],
      [7, "held"],
      [8, "pending"],
    ]);
    expect(migrations[6]!.hold_reason).toBe("requires session context middleware");
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);
    expect(await catalogPicture(db.sql)).toBe(before);
  });
});

describe("plan", () => {
  const threePending = {
    "001_create_accounts.sql":
      "-- accounts and their owners\ncreate schema app;\n\ncreate table app.accounts (\n  id int primary key,\n  owner text not null\n);\n" +
      "create index accounts_owner_idx on app.accounts (owner);\ninsert into app.accounts values (1, 'ada');\n",
    "002_label_accounts.ts": `import type { TransactionSql } from "postgres";

export async function up(sql: TransactionSql) {
  await sql\`alter table app.accounts add column label text\`;
}
`,
    "003_index_labels.sql": "-- migrate:no-transaction\ncreate index concurrently accounts_label_idx on app.accounts (label);\n",
  };

  test("lists the pending files in order with each statement and its line, changes nothing, and up then does exactly that", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder(threePending);
    const before = await catalogPicture(db.sql);
    const result = await runMain(["plan", "--json"], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(0);
    expect(jsonDocument(result, PlanSchema)).toEqual({
      table: "platform.schema_migrations",
      outcome: "apply",
      would_apply: [
        {
          version: 1,
          name: "001_create_accounts",
          file: "001_create_accounts.sql",
          language: "sql",
          mode: "one_transaction",
          out_of_order: null,
          statements: [
            { line: 2, kind: "CreateSchemaStmt", summary: "CREATE SCHEMA app" },
            { line: 4, kind: "CreateStmt", summary: "CREATE TABLE app.accounts" },
            { line: 8, kind: "IndexStmt", summary: "CREATE INDEX accounts_owner_idx ON app.accounts" },
            { line: 9, kind: "InsertStmt", summary: "INSERT INTO app.accounts" },
          ],
        },
        { version: 2, name: "002_label_accounts", file: "002_label_accounts.ts", language: "typescript", mode: "one_transaction", out_of_order: null, statements: [] },
        {
          version: 3,
          name: "003_index_labels",
          file: "003_index_labels.sql",
          language: "sql",
          mode: "no_transaction",
          out_of_order: null,
          statements: [{ line: 2, kind: "IndexStmt", summary: "CREATE INDEX CONCURRENTLY accounts_label_idx ON app.accounts" }],
        },
      ],
      held: [],
      refusals: [],
    });
    expect(runFinished(result)).toMatchObject({ outcome: "apply", would_apply: 3, held: 0, refusals: 0 });
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);
    expect(await catalogPicture(db.sql)).toBe(before);

    const text = await runMain(["plan"], { url: db.url, migrationsDir: dir });
    expect(text.code).toBe(0);
    const planned = text.stdout.slice(text.stdout.indexOf("up would apply 3 migrations, in this order:"));
    expect(planned.split("\n").slice(0, 9)).toEqual([
      "up would apply 3 migrations, in this order:",
      "  001_create_accounts.sql: one transaction",
      "    line 2  CREATE SCHEMA app",
      "    line 4  CREATE TABLE app.accounts",
      "    line 8  CREATE INDEX accounts_owner_idx ON app.accounts",
      "    line 9  INSERT INTO app.accounts",
      "  002_label_accounts.ts: TypeScript up() in one transaction",
      "  003_index_labels.sql: no transaction (each statement commits on its own)",
      "    line 2  CREATE INDEX CONCURRENTLY accounts_label_idx ON app.accounts",
    ]);
    expect(await catalogPicture(db.sql)).toBe(before);

    const applied = await runMain([], { url: db.url, migrationsDir: dir });
    expect(applied.code).toBe(0);
    expect(applied.events.filter((e) => e.event === "migration_applied").map((e) => e.file)).toEqual([
      "001_create_accounts.sql",
      "002_label_accounts.ts",
      "003_index_labels.sql",
    ]);
    const after = await runMain(["plan", "--json"], { url: db.url, migrationsDir: dir });
    expect(after.code).toBe(0);
    expect(jsonDocument(after, PlanSchema)).toMatchObject({ outcome: "nothing_to_do", would_apply: [], refusals: [] });
  });

  test("lists every reason up would refuse, from history and from the files, with file and line, and exits 4", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_first.sql": create("first") });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await writeFile(join(dir, "001_first.sql"), `${create("first")}-- edited\n`);
    await writeFile(join(dir, "002_commit.sql"), "create table two (id int);\ncommit;\ncreate table three (id int);\n");
    await writeFile(join(dir, "003_typo.sql"), "create table fine (id int);\ncreat table broken (id int);\n");
    const before = await catalogPicture(db.sql);

    const result = await runMain(["plan", "--json"], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(4);
    const document = jsonDocument(result, PlanSchema);
    expect(document.outcome).toBe("refuse");
    expect(document.refusals.map(({ check, file, line }) => ({ check, file, line }))).toEqual([
      { check: "drift", file: "001_first.sql", line: null },
      { check: "transaction", file: "002_commit.sql", line: 2 },
      { check: "syntax", file: "003_typo.sql", line: 2 },
    ]);
    expect(document.refusals[0]!.resolution).toContain("resolve 1 --accept-checksum");
    // The files up would apply once the refusals are resolved are still shown.
    expect(document.would_apply.map((file) => [file.file, file.statements.map((s) => `${s.line} ${s.summary}`)])).toEqual([
      ["002_commit.sql", ["1 CREATE TABLE two", "2 COMMIT", "3 CREATE TABLE three"]],
      ["003_typo.sql", []],
    ]);
    expect(await catalogPicture(db.sql)).toBe(before);

    const text = await runMain(["plan"], { url: db.url, migrationsDir: dir });
    expect(text.code).toBe(4);
    expect(text.stdout).toContain("up would refuse (3 problems) and apply nothing:\n  001_first.sql: applied migration was changed");
    expect(text.stdout).toContain('\n  002_commit.sql:2: transaction control statement "commit"');
    expect(text.stdout).toContain('\n  003_typo.sql:2: syntax error at or near "creat" (line 2, column 1, PostgreSQL 18 grammar)');
    expect(runFinished(text)).toMatchObject({ outcome: "refuse", would_apply: 2, refusals: 3 });
    expect(await catalogPicture(db.sql)).toBe(before);
  });

  test("an out-of-order file is refused, and shown as applying out of order with --allow-out-of-order", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_a.sql": create("a"), "003_c.sql": create("c") });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await writeFile(join(dir, "002_b.sql"), create("b"));

    const refused = await runMain(["plan", "--json"], { url: db.url, migrationsDir: dir });
    expect(refused.code).toBe(4);
    const refusedPlan = jsonDocument(refused, PlanSchema);
    expect(refusedPlan.would_apply).toEqual([]);
    expect(refusedPlan.refusals.map(({ check, file }) => ({ check, file }))).toEqual([{ check: "order", file: "002_b.sql" }]);

    const allowed = await runMain(["plan", "--json", "--allow-out-of-order"], { url: db.url, migrationsDir: dir });
    expect(allowed.code).toBe(0);
    expect(jsonDocument(allowed, PlanSchema)).toMatchObject({
      outcome: "apply",
      would_apply: [{ file: "002_b.sql", out_of_order: "allowed by flag" }],
      refusals: [],
    });
    const text = await runMain(["plan", "--allow-out-of-order"], { url: db.url, migrationsDir: dir });
    expect(text.stdout).toContain("\n  002_b.sql: one transaction; out of order (allowed by flag)\n");
  });

  test("over the platform migrations on a fresh database: 001-006 and 008 in order, 007 held, nothing written", async () => {
    const db = await server.fresh();
    const before = await catalogPicture(db.sql);
    const result = await runMain(["plan", "--json"], { url: db.url });
    expect(result.code).toBe(0);
    const document = jsonDocument(result, PlanSchema);
    expect(document.outcome).toBe("apply");
    expect(document.would_apply.map((file) => file.version)).toEqual([1, 2, 3, 4, 5, 6, 8]);
    expect(document.would_apply.every((file) => file.mode === "one_transaction" && file.statements.length > 0)).toBe(true);
    expect(document.held).toEqual([
      { version: 7, name: "007_restrictive_rls_policies", file: "007_restrictive_rls_policies.sql", reason: "requires session context middleware" },
    ]);
    expect(document.would_apply[0]!.statements[0]).toEqual({ line: 7, kind: "CreateSchemaStmt", summary: "CREATE SCHEMA platform" });
    expect(document.would_apply.at(-1)!.statements.map((s) => `${s.line} ${s.summary}`)).toEqual([
      "11 ALTER TABLE platform.users ADD COLUMN active_org_id",
      "16 ALTER TABLE platform.users ADD CONSTRAINT users_active_org_id_fkey",
      "19 ALTER TABLE platform.users VALIDATE CONSTRAINT users_active_org_id_fkey",
      "23 UPDATE platform.users",
      "36 CREATE INDEX users_active_org_id_idx ON platform.users",
      "42 CREATE FUNCTION platform.set_user_active_org(uuid, uuid)",
      "73 CREATE FUNCTION platform.get_user_active_org(uuid)",
    ]);
    // A held file is recorded as held only by up; plan writes no rows and no table.
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);
    expect(await catalogPicture(db.sql)).toBe(before);

    const text = await runMain(["plan"], { url: db.url });
    expect(text.stdout).toContain("\nup would skip 1 held file (and record it as held):\n  007_restrictive_rls_policies.sql: requires session context middleware\n");
    expect(runFinished(text).message).toBe("plan: up would apply 7 migrations; 1 held file skipped");
  });
});

describe("statement summaries", () => {
  // Forms the platform migrations do not use yet, and the fallback for statements without a describer.
  const cases: [sql: string, summary: string][] = [
    ["comment on table platform.users is 'people'", "COMMENT ON TABLE platform.users"],
    ["comment on column platform.users.email is 'login'", "COMMENT ON COLUMN platform.users.email"],
    ["comment on policy users_self on platform.users is 'x'", "COMMENT ON POLICY users_self ON platform.users"],
    ["grant select, insert on platform.users, platform.plans to authenticated, anon", "GRANT SELECT, INSERT ON TABLE platform.users, platform.plans TO authenticated, anon"],
    ["grant usage on schema platform to anon", "GRANT USAGE ON SCHEMA platform TO anon"],
    ["revoke all on function platform.f(uuid) from public", "REVOKE ALL ON FUNCTION platform.f(uuid) FROM PUBLIC"],
    ["grant select on all tables in schema platform to anon", "GRANT SELECT ON ALL TABLES IN SCHEMA platform TO anon"],
    ["create policy users_self on platform.users as restrictive for select using (true)", "CREATE POLICY users_self ON platform.users"],
    ["alter table platform.x enable row level security", "ALTER TABLE platform.x ENABLE ROW LEVEL SECURITY"],
    ["alter table platform.x rename constraint a to b", "ALTER TABLE platform.x RENAME CONSTRAINT a TO b"],
    ["alter policy p on platform.x rename to q", "ALTER POLICY p ON platform.x RENAME TO q"],
    ["alter table only platform.x add primary key (id), alter column y drop default", "ALTER TABLE platform.x ADD PRIMARY KEY, ALTER COLUMN y DROP DEFAULT"],
    ["create unique index concurrently \"Users_Idx\" on \"Platform\".users (a)", 'CREATE UNIQUE INDEX CONCURRENTLY "Users_Idx" ON "Platform".users'],
    ["create or replace function f(text[], int default 3, out x int) returns int language sql as 'select 1'", "CREATE OR REPLACE FUNCTION f(text[], int4)"],
    ["drop policy if exists p on platform.x", "DROP POLICY p ON platform.x"],
    ["drop table if exists platform.a, platform.b cascade", "DROP TABLE platform.a, platform.b"],
    ["drop index concurrently platform.i", "DROP INDEX CONCURRENTLY platform.i"],
    ["create materialized view platform.mv as select 1", "CREATE MATERIALIZED VIEW platform.mv"],
    ["delete from platform.x where id = 1", "DELETE FROM platform.x"],
    ["do $$ begin perform 1; end $$", "DO block"],
    ["commit", "COMMIT"],
    ["set local lock_timeout = '5s'", "set local lock_timeout = '5s'"],
    ["select 1,\n  2", "select 1, …"],
  ];

  test.each(cases)("%p", async (sql, summary) => {
    const parser = await loadSqlParser();
    const statements = parser.statements({ fileName: "001_x.sql", path: "/nowhere/001_x.sql", source: new TextEncoder().encode(sql), text: sql, hadBom: false });
    expect(statements.map(summarizeStatement)).toEqual([summary]);
  });
});
