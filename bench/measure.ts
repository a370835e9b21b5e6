/**
 * Whole-process measurement of one run: wall time from spawn to exit (runtime start-up included)
 * and peak resident memory.
 *
 * Peak memory comes from GNU time (`/usr/bin/time -f %M`), not from Bun's `resourceUsage()`: Bun
 * starts children with vfork, so the child's `ru_maxrss` starts at the parent's (this benchmark's)
 * resident size and `/bin/true` shows as 15 MB or more. GNU time forks first, so the figure is the
 * tool's own. Its `%e` has only 10 ms resolution, so wall time is taken here, around the spawn;
 * the wrapper's own cost is the same for every tool (the `floor` row shows it).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";

const GNU_TIME = "/usr/bin/time";
/** How much of a failed run's output to show. */
const OUTPUT_TAIL_CHARS = 2_000;

/** One process to run: a command line, its whole environment and its working directory. */
export interface ProcessSpec {
  readonly argv: readonly string[];
  readonly env: Record<string, string>;
  readonly cwd: string;
}

export interface RunSample {
  readonly wallMs: number;
  /** Peak resident set size in KiB; null when GNU time is not installed. */
  readonly peakRssKib: number | null;
}

export class ProcessFailedError extends Error {
  override readonly name = "ProcessFailedError";
}

export function canMeasureMemory(): boolean {
  return existsSync(GNU_TIME);
}

/** Runs `spec` to completion; throws ProcessFailedError, with the end of its output, unless it exits 0. */
export async function measureRun(spec: ProcessSpec, rssFile: string): Promise<RunSample> {
  const measureMemory = canMeasureMemory();
  const argv = measureMemory ? [GNU_TIME, "-o", rssFile, "-f", "%M", ...spec.argv] : [...spec.argv];
  const started = performance.now();
  const child = Bun.spawn(argv, { env: spec.env, cwd: spec.cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  // Both pipes are drained while the tool runs, so a chatty tool never blocks on a full pipe.
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  // Hundredths of a millisecond: finer digits would only be noise.
  const wallMs = Math.round((performance.now() - started) * 100) / 100;
  if (code !== 0) {
    const output = `${stdout}\n${stderr}`.trim();
    throw new ProcessFailedError(`${spec.argv.join(" ")} exited with ${code}:\n${output.slice(-OUTPUT_TAIL_CHARS)}`);
  }
  return { wallMs, peakRssKib: measureMemory ? await readPeakRss(rssFile) : null };
}

/** GNU time writes `%M` as the last line (after "Command exited with …" if it failed). */
async function readPeakRss(rssFile: string): Promise<number> {
  const lines = (await readFile(rssFile, "utf8")).trim().split("\n");
  const kib = Number(lines.at(-1));
  if (!Number.isFinite(kib)) throw new Error(`unexpected GNU time output in ${rssFile}: ${lines.join(" / ")}`);
  return kib;
}
