/**
 * The printed report (one table per size, the job's ratios, the targets) and the JSON results file
 * a closing note can quote.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { ratios, scenarioTitle, summarize, targets, type Series, type Summary } from "./stats.ts";
import type { RunContext } from "./context.ts";

type Cell = string;
const COLUMNS = ["scenario", "tool", "median ms", "min-max ms", "peak RSS MiB"] as const;
/** Numeric columns are right-aligned. */
const RIGHT_ALIGNED = new Set([2, 3, 4]);

function row(series: Series, summary: Summary): Cell[] {
  return [
    scenarioTitle(series.scenario, series.n),
    series.label,
    summary.medianMs.toFixed(1),
    `${summary.minMs.toFixed(1)}-${summary.maxMs.toFixed(1)}`,
    summary.peakRssMib === null ? "n/a" : summary.peakRssMib.toFixed(1),
  ];
}

function formatTable(rows: readonly Cell[][]): string {
  const all = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, column) => Math.max(...all.map((cells) => cells[column]!.length)));
  const line = (cells: readonly Cell[]) =>
    cells.map((cell, column) => (RIGHT_ALIGNED.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join("  ").trimEnd();
  return [line(all[0]!), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

function formatRatios(series: readonly Series[], n: number): string {
  return (["apply", "noop"] as const)
    .map((scenario) => {
      const parts = ratios(series)
        .filter((ratio) => ratio.n === n && ratio.scenario === scenario)
        .map((ratio) => `job/${ratio.reference} ${ratio.ratio.toFixed(2)}x`);
      return `  ${scenarioTitle(scenario, n)}: ${parts.join(", ")}`;
    })
    .join("\n");
}

export function formatReport(context: RunContext, series: readonly Series[]): string {
  const sizes = [...new Set(series.map((candidate) => candidate.n))];
  const header = [
    `Studio migration job benchmark, ${context.startedAt}`,
    `${context.machine}; ${Object.entries(context.versions)
      .map(([tool, version]) => `${tool} ${version}`)
      .join(", ")}`,
    context.server,
    `whole-process wall time and peak RSS, medians of ${context.rounds.apply} rounds applying (tools interleaved) ` +
      `and ${context.rounds.noop} no-op rounds (tools and sizes interleaved)`,
  ].join("\n");
  const sections = sizes.map((n) => {
    const rows = series.filter((candidate) => candidate.n === n).map((candidate) => row(candidate, summarize(candidate.samples)));
    return `\nN = ${n}\n${formatTable(rows)}\nratios of medians:\n${formatRatios(series, n)}`;
  });
  const targetLines = targets(series).map((result) => `  ${result.status.padEnd(12)} ${result.target}: ${result.measured}`);
  return [header, ...sections, `\ntargets:\n${targetLines.join("\n")}`].join("\n");
}

export async function writeResults(path: string, context: RunContext, series: readonly Series[]): Promise<void> {
  const results = {
    ...context,
    series: series.map((entry) => ({ ...entry, summary: summarize(entry.samples) })),
    ratios: ratios(series),
    targets: targets(series),
  };
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(results, null, 2)}\n`);
}
