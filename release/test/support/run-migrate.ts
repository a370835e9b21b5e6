/**
 * Runs the real entry point, `bun release/migrate.ts`, as a child process, the way Railway does,
 * and checks on every run that the database password never reaches its output.
 */
import { expect } from "bun:test";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEST_PASSWORD } from "./postgres.ts";

export const REPO_ROOT = join(import.meta.dir, "..", "..", "..");
export const ENTRY = join(REPO_ROOT, "release", "migrate.ts");
export const PLATFORM_MIGRATIONS = join(REPO_ROOT, "apps", "studio", "database", "migrations");

/** What up applies from the platform migrations on a fresh database: all but 007, which is held. */
export const PLATFORM_APPLIED = [
  "001_create_platform_schema",
  "002_platform_billing_schema",
  "003_user_management_and_permissions",
  "004_create_lancio_org",
  "005_create_audit_logs",
  "006_add_platform_databases_table",
  "008_add_active_org_tracking",
] as const;

export interface LogEvent {
  readonly level: string;
  readonly message: string;
  readonly event: string;
  readonly [attribute: string]: unknown;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly events: LogEvent[];
}

export interface RunOptions {
  readonly url?: string | undefined;
  readonly migrationsDir?: string;
  readonly env?: Record<string, string>;
}

/** Environment for a child run: only what the test gives it, as in Railway's pre-deploy container. */
export function childEnv({ url, migrationsDir, env = {} }: RunOptions): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    LOG_FORMAT: "json",
    MIGRATE_CONNECT_TIMEOUT: "5s",
    ...(url ? { DATABASE_URL: url } : {}),
    ...(migrationsDir ? { MIGRATIONS_DIR: migrationsDir } : {}),
    ...env,
  };
}

export function spawnMigrate(args: readonly string[], options: RunOptions) {
  return Bun.spawn([process.execPath, ENTRY, ...args], {
    // Not the repository: the job must find its own files from any working directory.
    cwd: tmpdir(),
    env: childEnv(options),
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
}

export async function runMigrate(args: readonly string[], options: RunOptions): Promise<RunResult> {
  const child = spawnMigrate(args, options);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return finish(code, stdout, stderr);
}

/** Parses the JSON log lines and asserts the password appears nowhere. */
export function finish(code: number, stdout: string, stderr: string): RunResult {
  for (const secret of [TEST_PASSWORD, encodeURIComponent(TEST_PASSWORD)]) {
    expect(stdout).not.toContain(secret);
    expect(stderr).not.toContain(secret);
  }
  // A fix command is marked with private-use characters until its line is written (shared/invocation.ts): none may be left.
  expect(`${stdout}${stderr}`).not.toMatch(/[\uE000\uE001]/);
  const events = `${stdout}\n${stderr}`
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogEvent);
  return { code, stdout, stderr, events };
}

/** Writes a migrations folder with the given files (name -> content) and returns its path. */
export async function migrationsFolder(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "migrate-test-files-"));
  await Promise.all(Object.entries(files).map(([name, content]) => writeFile(join(dir, name), content)));
  return dir;
}

/** The error event of a failed run. */
export function failure(result: RunResult): LogEvent {
  const event = result.events.find((candidate) => candidate.level === "error");
  if (!event) throw new Error(`no error event in output:\n${result.stdout}\n${result.stderr}`);
  return event;
}
