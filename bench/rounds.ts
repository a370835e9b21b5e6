/**
 * The measurements. Per size N: generate the migrations, check each tool once (untimed, which also
 * warms the page cache), then time the tools applying N, interleaved round by round in rotating
 * order, so that drift on a shared machine spreads over all of them instead of favouring whichever
 * ran first. The no-op runs of every size are interleaved together at the end, because one target
 * compares the job at 2000 applied with the job at 200.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { generateMigrations } from "./migrations.ts";
import { measureRun, type ProcessSpec, type RunSample } from "./measure.ts";
import { migrationProblems, type Expectation } from "./verify.ts";
import { dbmateTool, floorTool, jobTool, psqlApplyTool, select1Tool, type Applier, type Tool } from "./tools.ts";
import type { BenchServer } from "./server.ts";
import type { Scenario, Series } from "./stats.ts";

export interface Bench {
  readonly server: BenchServer;
  readonly jobEntry: string;
  readonly progress: (line: string) => void;
  /** GNU time's output file, rewritten by every run. */
  readonly rssFile: string;
}

/** One timed process: which series it belongs to and what to run. */
interface Entry {
  readonly n: number;
  readonly scenario: Scenario;
  readonly tool: Tool;
  readonly spec: () => ProcessSpec;
}

/** The no-op runs of one size, ready once its migrated databases exist. */
export interface NoopSize {
  readonly entries: readonly Entry[];
  /** Fails unless the no-op runs left every migrated database as it was. */
  verifyUnchanged(): Promise<void>;
  dropDatabases(): Promise<void>;
}

/** Round r starts with the r-th item, so each runs first, second, … equally often. */
function rotated<T>(items: readonly T[], round: number): T[] {
  const start = round % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}

/** Collects the samples of every series, in the order the series first ran. */
export class Recorder {
  readonly #series = new Map<string, { entry: Entry; samples: RunSample[] }>();

  async measure(entry: Entry, bench: Bench): Promise<void> {
    const sample = await measureRun(entry.spec(), bench.rssFile);
    const key = `${entry.n}/${entry.scenario}/${entry.tool.name}`;
    const recorded = this.#series.get(key) ?? { entry, samples: [] };
    recorded.samples.push(sample);
    this.#series.set(key, recorded);
  }

  series(): Series[] {
    return [...this.#series.values()].map(({ entry, samples }) => ({ n: entry.n, scenario: entry.scenario, tool: entry.tool.name, label: entry.tool.label, samples }));
  }
}

async function assertMigrated(server: BenchServer, database: string, tool: Applier, expected: Expectation, when: string): Promise<void> {
  const problems = await server.inDatabase(database, (sql) => migrationProblems(sql, tool.appliedCountSql, expected));
  if (problems.length > 0) throw new Error(`${tool.label} ${when}:\n  ${problems.join("\n  ")}`);
}

/**
 * Runs `tool` once on a fresh database, untimed, and checks the result: a broken tool fails the
 * benchmark here instead of looking fast. Returns the migrated database, for the no-op runs.
 */
async function applyAndVerify(tool: Applier, bench: Bench, expected: Expectation): Promise<string> {
  const database = await bench.server.createDatabase();
  await measureRun(tool.invocation(database), bench.rssFile);
  await assertMigrated(bench.server, database, tool, expected, `did not apply the ${expected.migrations} migrations`);
  return database;
}

async function applyRounds(n: number, appliers: readonly Applier[], rounds: number, bench: Bench, recorder: Recorder): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    bench.progress(`N=${n}: applying, round ${round + 1}/${rounds}`);
    const order = rotated(appliers, round);
    // Databases are created before and dropped after the round, outside every timed section.
    const databases = await Promise.all(order.map(() => bench.server.createDatabase()));
    for (const [index, tool] of order.entries()) {
      await recorder.measure({ n, scenario: "apply", tool, spec: () => tool.invocation(databases[index]!) }, bench);
    }
    await Promise.all(databases.map((database) => bench.server.dropDatabase(database)));
  }
}

/**
 * Generates N migrations under `root`, checks every tool, times the apply rounds, and returns the
 * no-op runs for later: against the database each tool migrated itself (select 1 uses the job's).
 */
export async function benchmarkApply(n: number, rounds: number, root: string, bench: Bench, recorder: Recorder): Promise<NoopSize> {
  const migrations = await generateMigrations(root, n);
  const cwd = join(root, "cwd");
  await mkdir(cwd);
  const setting = { server: bench.server, migrations, cwd, jobEntry: bench.jobEntry };
  const [job, psql, dbmate] = [jobTool(setting), psqlApplyTool(setting), dbmateTool(setting)];
  const expected: Expectation = { schema: migrations.expected, migrations: n };

  bench.progress(`N=${n}: checking every tool once (untimed)`);
  const jobDatabase = await applyAndVerify(job, bench, expected);
  const dbmateDatabase = await applyAndVerify(dbmate, bench, expected);
  await bench.server.dropDatabase(await applyAndVerify(psql, bench, expected));
  await applyRounds(n, [job, psql, dbmate], rounds, bench, recorder);

  const noop = (tool: Tool, database: string): Entry => ({ n, scenario: "noop", tool, spec: () => tool.invocation(database) });
  return {
    entries: [noop(job, jobDatabase), noop(dbmate, dbmateDatabase), noop(select1Tool(setting), jobDatabase), noop(floorTool(setting), jobDatabase)],
    async verifyUnchanged() {
      await assertMigrated(bench.server, jobDatabase, job, expected, "changed the database in a no-op run");
      await assertMigrated(bench.server, dbmateDatabase, dbmate, expected, "changed the database in a no-op run");
    },
    async dropDatabases() {
      await Promise.all([jobDatabase, dbmateDatabase].map((database) => bench.server.dropDatabase(database)));
    },
  };
}

/** The no-op runs of all sizes, interleaved together round by round. */
export async function benchmarkNoop(sizes: readonly NoopSize[], rounds: number, bench: Bench, recorder: Recorder): Promise<void> {
  bench.progress(`no-op runs: ${rounds} rounds`);
  const entries = sizes.flatMap((size) => size.entries);
  for (let round = 0; round < rounds; round++) {
    for (const entry of rotated(entries, round)) await recorder.measure(entry, bench);
  }
  for (const size of sizes) {
    await size.verifyUnchanged();
    await size.dropDatabases();
  }
}
