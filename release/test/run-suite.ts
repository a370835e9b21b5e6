#!/usr/bin/env bun
/**
 * The runner behind `npm test`: the suite in twice as many shards as the machine has cores, each
 * shard a `bun test --shard=i/n` process with its own PostgreSQL (see useTestServer), all side by
 * side. A shard spends much of its time waiting on the database and on the job's child processes,
 * and bun deals files to shards in turn, so one shard can draw the slow files: on this project's
 * two-core machines one process takes about 100 s, two shards about 63 s, four about 45 s.
 * Each shard's output is printed whole once it ends, so that files do not interleave; the run
 * fails if any shard does. TEST_SHARDS=1 runs the whole suite in one process.
 */
import { availableParallelism } from "node:os";

const SUITE = "release/test";
/** Long enough for the slowest fault tests; Bun ignores bunfig.toml's timeout when CI=true. */
const TEST_TIMEOUT_MS = 120_000;

function shardCount(): number {
  const chosen = process.env.TEST_SHARDS?.trim();
  if (!chosen) return 2 * availableParallelism();
  const count = Number(chosen);
  if (!Number.isInteger(count) || count < 1) throw new Error(`TEST_SHARDS=${chosen}: give a whole number of shards, 1 or more`);
  return count;
}

interface ShardResult {
  readonly label: string;
  readonly code: number;
}

async function runShard(index: number, count: number): Promise<ShardResult> {
  const shard = count > 1 ? [`--shard=${index}/${count}`] : [];
  const child = Bun.spawn([process.execPath, "test", `--timeout=${TEST_TIMEOUT_MS}`, ...shard, SUITE], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  const label = count > 1 ? `shard ${index}/${count}` : "suite";
  process.stdout.write(`\n===== ${label}: exit ${code} =====\n${stdout}${stderr}`);
  return { label, code };
}

const count = shardCount();
const started = performance.now();
const results = await Promise.all(Array.from({ length: count }, (_, index) => runShard(index + 1, count)));
const failed = results.filter((result) => result.code !== 0);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
process.stdout.write(`\n${results.length} ${results.length === 1 ? "process" : "shards"} in ${seconds} s: ${failed.length === 0 ? "all passed" : `failed: ${failed.map((result) => result.label).join(", ")}`}\n`);
process.exit(failed.length === 0 ? 0 : 1);
