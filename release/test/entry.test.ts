/**
 * The real entry point, `bun release/migrate.ts`, run as Railway runs it: a process whose exit
 * status is the code main() returned, whose errors and warnings go to stderr and the rest to
 * stdout, and which finds its own migrations from any working directory. Most files test the job's
 * logic through main() in the test's process (support/run-main.ts); this one keeps every exit code
 * of the design's table true of the process itself.
 */
import { describe, expect, test } from "bun:test";
import { useTestServer } from "./support/postgres.ts";
import { PLATFORM_APPLIED, failure, migrationsFolder, runMigrate, type RunResult } from "./support/run-migrate.ts";
import { tableExists } from "./support/catalog.ts";
import { runAtTerminal } from "./support/terminal.ts";

const server = useTestServer();

/** The stream a JSON log line was written to. */
function streamOf(result: RunResult, event: string): "stdout" | "stderr" | undefined {
  const written = (text: string) => text.split("\n").some((line) => line.startsWith("{") && (JSON.parse(line) as { event?: string }).event === event);
  if (written(result.stdout)) return "stdout";
  if (written(result.stderr)) return "stderr";
  return undefined;
}

describe("the exit status of bun release/migrate.ts", () => {
  test("0: the platform migrations applied, found from a working directory outside the repository; info on stdout, warnings on stderr", async () => {
    const db = await server.fresh();
    const result = await runMigrate([], { url: db.url });
    expect(result.code).toBe(0);
    expect(result.events.filter((e) => e.event === "migration_applied").map((e) => e.migration)).toEqual([...PLATFORM_APPLIED]);
    expect(streamOf(result, "run_finished")).toBe("stdout");
    expect(streamOf(result, "lint_warning")).toBe("stderr");
  });

  test("1: a migration failed, reported on stderr with its file and line", async () => {
    const db = await server.fresh();
    const result = await runMigrate([], { url: db.url, migrationsDir: await migrationsFolder({ "001_a.sql": "create table a (id int);\ninsert into no_such_table values (1);\n" }) });
    expect(result.code).toBe(1);
    expect(failure(result)).toMatchObject({ file: "001_a.sql", line: 2, code: "42P01" });
    expect(streamOf(result, "run_failed")).toBe("stderr");
    expect(await tableExists(db.sql, "a")).toBe(false);
  });

  test("2: a usage error, before anything connects", async () => {
    const result = await runMigrate([], {});
    expect(result.code).toBe(2);
    expect(failure(result).message).toContain("DATABASE_URL");
    expect(streamOf(result, "config_invalid")).toBe("stderr");
  });

  test("3: the database is unavailable", async () => {
    const result = await runMigrate([], { url: server.urlFor("no_such_db"), migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }) });
    expect(result.code).toBe(3);
    expect(failure(result)).toMatchObject({ code: "3D000" });
  });

  test("4: refused by validation, with nothing applied", async () => {
    const db = await server.fresh();
    const result = await runMigrate([], { url: db.url, migrationsDir: await migrationsFolder({ "001_a.sql": "create table a (id int);\n", "002_empty.sql": "\n" }) });
    expect(result.code).toBe(4);
    expect(failure(result).message).toContain("002_empty.sql");
    expect(await tableExists(db.sql, "a")).toBe(false);
  });
});

describe("at a terminal", () => {
  test("errors and warnings are coloured by level; NO_COLOR, or a stream that is no terminal, leaves them plain", async () => {
    const coloured = await runAtTerminal(["--frobnicate"], { url: "postgresql://u@127.0.0.1:1/d", env: { LOG_FORMAT: "text" } }).result();
    expect(coloured.code).toBe(2);
    expect(coloured.stdout).toContain("\x1b[1;31merror:\x1b[0m configuration problem: unknown flag --frobnicate");
    const plain = await runAtTerminal(["--frobnicate"], { url: "postgresql://u@127.0.0.1:1/d", env: { LOG_FORMAT: "text", NO_COLOR: "1" } }).result();
    expect(plain.code).toBe(2);
    expect(plain.stdout).toContain("error: configuration problem: unknown flag --frobnicate");
    expect(plain.stdout).not.toContain("\x1b[");
    const piped = await runMigrate(["--frobnicate"], { url: "postgresql://u@127.0.0.1:1/d", env: { LOG_FORMAT: "text" } });
    expect(piped.stderr).toStartWith("error: configuration problem: unknown flag --frobnicate");
  });
});
