/**
 * Runs the job inside the test's own process: main() from release/src/cli.ts, given what
 * release/migrate.ts gives it, with the environment a child run of runMigrate would have. A test of
 * the job's logic (documents, refusals, records, the SQL it runs) costs a call instead of a
 * process start. What only a process shows (its exit status, signals, SIGKILL, the terminal,
 * concurrent runs of real processes) is tested through runMigrate. The password check of
 * runMigrate's finish() applies to every run here too.
 */
import { join } from "node:path";
import { main } from "../../src/cli/cli.ts";
import { machineHost } from "../../host/host.ts";
import { localUser } from "../../host/local-user.ts";
import { readdir, readFile } from "node:fs/promises";
import { JOB_NAME, JOB_VERSION } from "../../src/shared/version.ts";
import { PLATFORM_MIGRATIONS, REPO_ROOT, childEnv, finish, type RunOptions, type RunResult } from "./run-migrate.ts";


export async function runMain(args: readonly string[], options: RunOptions): Promise<RunResult> {
  const env = childEnv(options);
  if (env.MIGRATIONS_DIR) await refuseRewrittenTypeScript(env.MIGRATIONS_DIR);
  let stdout = "";
  let stderr = "";
  const code = await main({
    argv: args,
    env,
    sink: {
      stdout: (line) => void (stdout += `${line}\n`),
      stderr: (line) => void (stderr += `${line}\n`),
    },
    // A child of runMigrate has pipes for stdout and nothing on stdin.
    stdoutIsTty: false,
    stderrIsTty: false,
    stdinIsTty: false,
    layout: { migrationsDir: PLATFORM_MIGRATIONS, embeddedDataDir: join(REPO_ROOT, ".embedded-postgres") },
    host: machineHost(join(REPO_ROOT, "release")),
    localUser: localUser(env),
    // Nothing signals a run in the test's process; signals are tested on child processes.
    signal: new AbortController().signal,
    runnerVersion: `${JOB_NAME} ${JOB_VERSION} (bun ${Bun.version})`,
  });
  return finish(code, stdout, stderr);
}

/**
 * The job imports a TypeScript migration by its path, and a process imports a path once: a file
 * rewritten after an in-process run would run its old text in the next one, which no deploy does.
 */
const typeScriptSeen = new Map<string, string>();

async function refuseRewrittenTypeScript(migrationsDir: string): Promise<void> {
  const names = await readdir(migrationsDir).catch(() => []);
  for (const name of names.filter((candidate) => candidate.endsWith(".ts"))) {
    const path = join(migrationsDir, name);
    const text = await readFile(path, "utf8");
    const seen = typeScriptSeen.get(path);
    if (seen !== undefined && seen !== text) {
      throw new Error(`${path} changed after an in-process run imported it; the next run would import the old module. Write it to a new folder, or use runMigrate`);
    }
    typeScriptSeen.set(path, text);
  }
}
