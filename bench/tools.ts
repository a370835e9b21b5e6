/**
 * The processes the benchmark compares: the job itself and its references (psql, dbmate), each
 * started as a deploy would start it, with only the environment it needs.
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { PSQL_TRACKING_TABLE, type GeneratedMigrations } from "./migrations.ts";
import type { ProcessSpec } from "./measure.ts";
import type { BenchServer } from "./server.ts";

const REPO_ROOT = join(import.meta.dir, "..");
const PSQL = "/usr/bin/psql";
/** dbmate's npm package ships the Go binary in a platform package; its Node wrapper would add a Node start-up. */
const DBMATE = join(REPO_ROOT, "node_modules", "@dbmate", `${process.platform}-${process.arch}`, "bin", "dbmate");

export type ToolName = "job" | "psql" | "dbmate" | "select1" | "floor";

export interface Tool {
  readonly name: ToolName;
  /** What the table calls it. */
  readonly label: string;
  /** The process to run against `database`: for the appliers, the one that applies what is pending. */
  invocation(database: string): ProcessSpec;
  /** Counts the migrations the tool recorded as applied, for the correctness check; none for select1 and floor. */
  readonly appliedCountSql: string | undefined;
}

/** A tool that applies the migrations, and so has a tracking table to check. */
export interface Applier extends Tool {
  readonly appliedCountSql: string;
}

export interface ToolSetting {
  readonly server: BenchServer;
  readonly migrations: GeneratedMigrations;
  /** Working directory of every tool: empty, so no tool picks up a stray config or `.env` file. */
  readonly cwd: string;
  /** The job's entry file: release/migrate.ts unless --job names another build. */
  readonly jobEntry: string;
}

/** Only what each tool needs, as in Railway's pre-deploy container. */
function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" };
}

export function jobTool({ server, migrations, cwd, jobEntry }: ToolSetting): Applier {
  const shownEntry = jobEntry.startsWith(REPO_ROOT) ? relative(REPO_ROOT, jobEntry) : jobEntry;
  return {
    name: "job",
    label: `job (bun ${shownEntry})`,
    // The job's table also holds held and failed rows.
    appliedCountSql: "select count(*) from platform.schema_migrations where status = 'applied'",
    invocation: (database) => ({
      argv: [process.execPath, jobEntry],
      env: { ...baseEnv(), DATABASE_URL: server.url(database), MIGRATIONS_DIR: migrations.jobDir, LOG_FORMAT: "json" },
      cwd,
    }),
  };
}

export function psqlApplyTool({ server, migrations, cwd }: ToolSetting): Applier {
  return {
    name: "psql",
    label: "psql, 1 tx per migration",
    appliedCountSql: `select count(*) from ${PSQL_TRACKING_TABLE}`,
    invocation: (database) => ({
      argv: [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", migrations.psqlScript],
      env: { ...baseEnv(), ...server.libpqEnv(database) },
      cwd,
    }),
  };
}

export function dbmateTool({ server, migrations, cwd }: ToolSetting): Applier {
  return {
    name: "dbmate",
    label: "dbmate up",
    appliedCountSql: "select count(*) from public.schema_migrations",
    invocation: (database) => ({
      argv: [DBMATE, "--migrations-dir", migrations.dbmateDir, "--no-dump-schema", "up"],
      // dbmate reads DATABASE_URL by default; lib/pq would otherwise insist on TLS.
      env: { ...baseEnv(), DATABASE_URL: `${server.url(database)}?sslmode=disable` },
      cwd,
    }),
  };
}

export function select1Tool({ server, cwd }: ToolSetting): Tool {
  return {
    name: "select1",
    label: "psql -c 'select 1'",
    appliedCountSql: undefined,
    invocation: (database) => ({ argv: [PSQL, "-X", "-q", "-c", "select 1"], env: { ...baseEnv(), ...server.libpqEnv(database) }, cwd }),
  };
}

/** Starting and reaping a process through the timing wrapper: the floor under every other row. */
export function floorTool({ cwd }: ToolSetting): Tool {
  return { name: "floor", label: "floor (/bin/true)", appliedCountSql: undefined, invocation: () => ({ argv: ["/bin/true"], env: baseEnv(), cwd }) };
}

/** Fails early, with the fix, when a reference tool is missing. */
export function assertToolsInstalled(): void {
  const required: [path: string, fix: string][] = [
    [PSQL, "install the PostgreSQL client: apt-get install postgresql-client"],
    [DBMATE, "run npm ci: the dbmate development dependency ships this binary in its platform package"],
  ];
  const missing = required.filter(([path]) => !existsSync(path));
  if (missing.length > 0) throw new Error(`missing tools:\n${missing.map(([path, fix]) => `  ${path}: ${fix}`).join("\n")}`);
}

async function versionLine(argv: readonly string[]): Promise<string> {
  const child = Bun.spawn([...argv], { stdout: "pipe", stderr: "ignore", stdin: "ignore" });
  const output = await new Response(child.stdout).text();
  await child.exited;
  return output.trim().split("\n")[0] ?? "";
}

/** The reference tools' versions, for the report: "psql (PostgreSQL) 15.18 (…)" becomes "15.18 (…)". */
export async function toolVersions(): Promise<Record<string, string>> {
  const [psql, dbmate] = await Promise.all([versionLine([PSQL, "--version"]), versionLine([DBMATE, "--version"])]);
  return { psql: psql.replace(/^psql \(PostgreSQL\) /, ""), dbmate: dbmate.replace(/^dbmate version /, "") };
}
