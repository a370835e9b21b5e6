/**
 * Medians, ranges, ratios and the targets, computed from the raw samples. Whole-process
 * times drift on shared machines, so only medians of interleaved rounds are compared.
 */
import type { RunSample } from "./measure.ts";
import type { ToolName } from "./tools.ts";

export type Scenario = "apply" | "noop";

/** Every run of one tool in one scenario at one size. */
export interface Series {
  readonly n: number;
  readonly scenario: Scenario;
  readonly tool: ToolName;
  readonly label: string;
  readonly samples: readonly RunSample[];
}

export interface Summary {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** The largest peak RSS of any run, in MiB; null when memory was not measured. */
  readonly peakRssMib: number | null;
}

export interface Ratio {
  readonly n: number;
  readonly scenario: Scenario;
  readonly reference: ToolName;
  /** The job's median over the reference's median. */
  readonly ratio: number;
}

export type TargetStatus = "PASS" | "MISS" | "not measured";

export interface TargetResult {
  readonly target: string;
  /** A ratio, or MiB for the memory target; null when not measured. */
  readonly value: number | null;
  readonly limit: number;
  readonly measured: string;
  readonly status: TargetStatus;
}

/** Which references the job is compared with, per scenario. */
export const REFERENCES: Record<Scenario, readonly ToolName[]> = { apply: ["psql", "dbmate"], noop: ["dbmate", "select1"] };

export function scenarioTitle(scenario: Scenario, n: number): string {
  return scenario === "apply" ? `up, ${n} pending` : `up, ${n} applied (no-op)`;
}

const KIB_PER_MIB = 1024;
/** The memory targets: the highest peak of any job run at each size. */
export const MEMORY_LIMIT_MIB: Readonly<Record<number, number>> = { 200: 40, 2000: 60 };

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function summarize(samples: readonly RunSample[]): Summary {
  const times = samples.map((sample) => sample.wallMs);
  const rss = samples.map((sample) => sample.peakRssKib).filter((kib) => kib !== null);
  return {
    medianMs: median(times),
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    peakRssMib: rss.length > 0 ? Math.max(...rss) / KIB_PER_MIB : null,
  };
}

function find(series: readonly Series[], n: number, scenario: Scenario, tool: ToolName): Series | undefined {
  return series.find((candidate) => candidate.n === n && candidate.scenario === scenario && candidate.tool === tool);
}

function medianOf(series: readonly Series[], n: number, scenario: Scenario, tool: ToolName): number | undefined {
  const found = find(series, n, scenario, tool);
  return found ? summarize(found.samples).medianMs : undefined;
}

export function ratios(series: readonly Series[]): Ratio[] {
  const sizes = [...new Set(series.map((candidate) => candidate.n))];
  return sizes.flatMap((n) =>
    (Object.keys(REFERENCES) as Scenario[]).flatMap((scenario) =>
      REFERENCES[scenario].flatMap((reference) => {
        const job = medianOf(series, n, scenario, "job");
        const other = medianOf(series, n, scenario, reference);
        return job === undefined || other === undefined ? [] : [{ n, scenario, reference, ratio: job / other }];
      }),
    ),
  );
}

/** A target "measured ≤ limit", or not measured when a size it needs was not run. */
function checkTarget(target: string, measured: number | undefined, limit: number, describe: (value: number) => string): TargetResult {
  if (measured === undefined) return { target, value: null, limit, measured: "-", status: "not measured" };
  return { target, value: measured, limit, measured: describe(measured), status: measured <= limit ? "PASS" : "MISS" };
}

function quotient(numerator: number | undefined, denominator: number | undefined): number | undefined {
  return numerator === undefined || denominator === undefined ? undefined : numerator / denominator;
}

/** The job's largest peak RSS over all its runs, and in which scenario. */
function highestJobPeak(series: readonly Series[], n: number): { mib: number; where: string } | undefined {
  let highest: { mib: number; where: string } | undefined;
  for (const candidate of series.filter((entry) => entry.tool === "job" && entry.n === n)) {
    const mib = summarize(candidate.samples).peakRssMib;
    if (mib !== null && (!highest || mib > highest.mib)) highest = { mib, where: scenarioTitle(candidate.scenario, candidate.n) };
  }
  return highest;
}

/** The targets of the issue, for N = 200 and N = 2000. */
export function targets(series: readonly Series[]): TargetResult[] {
  const times = (value: number) => `${value.toFixed(2)}x`;
  const memory = Object.entries(MEMORY_LIMIT_MIB).map(([size, limit]) => {
    const peak = highestJobPeak(series, Number(size));
    return checkTarget(`peak memory of any job run at ${size} <= ${limit} MiB`, peak?.mib, limit, (mib) => `${mib.toFixed(1)} MiB (${peak?.where})`);
  });
  return [
    checkTarget("no-op with 200 applied <= 1.0x dbmate", quotient(medianOf(series, 200, "noop", "job"), medianOf(series, 200, "noop", "dbmate")), 1.0, times),
    checkTarget(
      "applying 200 <= 1.1x psql (1 tx per migration)",
      quotient(medianOf(series, 200, "apply", "job"), medianOf(series, 200, "apply", "psql")),
      1.1,
      times,
    ),
    checkTarget("no-op with 2000 applied <= 1.3x no-op with 200", quotient(medianOf(series, 2000, "noop", "job"), medianOf(series, 200, "noop", "job")), 1.3, times),
    ...memory,
  ];
}
