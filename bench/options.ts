/**
 * The benchmark's command line: `npm run bench -- --n 200 --rounds 5`. Every problem is reported
 * at once.
 */
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/** The sizes the targets are stated for. */
export const DEFAULT_SIZES = [200, 2000];
export const DEFAULT_ROUNDS = 7;
/** No-op runs take tens of milliseconds, where noise matters most: they get more rounds. */
export const NOOP_ROUNDS_PER_ROUND = 3;
export const DEFAULT_RESULTS_FILE = join(import.meta.dir, "results", "latest.json");
/** The job as the image runs it: the launcher the Dockerfile installs as release/migrate.ts, and the compiled job beside it. */
export const DEFAULT_JOB_ENTRY = join(import.meta.dir, "..", "release", "image-entry.ts");
/** The entry file of the image's form; the benchmark compiles the job beside it first. */
export const IMAGE_ENTRY_NAME = "image-entry.ts";

export const BENCH_USAGE = `usage: npm run bench -- [--n <count>]... [--rounds <count>] [--noop-rounds <count>] [--out <file>] [--job <entry>]

  --n <count>            migrations to generate; repeat for several sizes (default: ${DEFAULT_SIZES.join(" and ")})
  --rounds <count>       interleaved rounds applying N to a fresh database (default: ${DEFAULT_ROUNDS})
  --noop-rounds <count>  rounds of the no-op runs, all sizes interleaved together (default: ${NOOP_ROUNDS_PER_ROUND} x rounds)
  --out <file>           where to write the JSON results (default: bench/results/latest.json)
  --job <entry>          the job's entry file: release/migrate.ts for the sources as a checkout runs
                         them, or another copy's release/ (default: release/image-entry.ts, the job
                         compiled as the image runs it, built first with npm run build:job)`;

export interface BenchOptions {
  readonly sizes: readonly number[];
  readonly rounds: number;
  readonly noopRounds: number;
  readonly resultsFile: string;
  /** Absolute path of the job's entry file. */
  readonly jobEntry: string;
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

function positiveInteger(flag: string, text: string, problems: string[]): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) problems.push(`--${flag} must be a positive whole number, not "${text}"`);
  return value;
}

/** Returns the options, or "help"; throws UsageError listing every problem. */
export function parseOptions(argv: readonly string[]): BenchOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        n: { type: "string", multiple: true },
        rounds: { type: "string" },
        "noop-rounds": { type: "string" },
        out: { type: "string" },
        job: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${BENCH_USAGE}`);
  }
  if (parsed.help) return "help";
  const problems: string[] = [];
  const sizes = parsed.n?.map((text) => positiveInteger("n", text, problems)) ?? DEFAULT_SIZES;
  const rounds = parsed.rounds === undefined ? DEFAULT_ROUNDS : positiveInteger("rounds", parsed.rounds, problems);
  const noopRounds = parsed["noop-rounds"] === undefined ? rounds * NOOP_ROUNDS_PER_ROUND : positiveInteger("noop-rounds", parsed["noop-rounds"], problems);
  const jobEntry = parsed.job === undefined ? DEFAULT_JOB_ENTRY : resolve(parsed.job);
  if (!existsSync(jobEntry)) problems.push(`--job: ${jobEntry} does not exist`);
  if (problems.length > 0) throw new UsageError(`${problems.join("\n")}\n${BENCH_USAGE}`);
  return { sizes: [...new Set(sizes)], rounds, noopRounds, resultsFile: resolve(parsed.out ?? DEFAULT_RESULTS_FILE), jobEntry };
}
