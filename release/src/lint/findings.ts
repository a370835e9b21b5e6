/**
 * What the lint gate finds, as the gate (lint.ts) builds it and the report (report.ts) prints it:
 * the findings of each file, the files skipped, and the counts that decide whether it blocks.
 */
import type { FindingLevel, RuleSource } from "./catalog.ts";
import type { LintMode } from "../shared/config.ts";

export interface Finding {
  /** File name, relative to the migrations folder. */
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based, in characters. */
  readonly column: number;
  readonly rule: string;
  readonly level: FindingLevel;
  readonly source: RuleSource;
  readonly message: string;
  /** What to do about it. */
  readonly fix: string;
  /** Set when a waiver next to the statement silences it: it neither blocks nor warns. */
  readonly waived: { readonly reason: string } | undefined;
  /** An error reported as a warning for this run because of MIGRATE_LINT=warn. */
  readonly relaxed: boolean;
}

export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
}

export interface LintReport {
  /** The SQL files linted, in version order. */
  readonly linted: readonly string[];
  readonly skipped: readonly SkippedFile[];
  /** In file order, then by line and column. */
  readonly findings: readonly Finding[];
  /** Warnings about the run itself rather than a statement: squawk missing or failing. */
  readonly notices: readonly string[];
  /** Whether squawk's rules were checked (false when it is missing or failed under the relax switch). */
  readonly squawkRan: boolean;
  readonly mode: LintMode;
  /** The lint.toml the levels came from; undefined when there is none (every rule at its default). */
  readonly configPath: string | undefined;
}

export interface LintCounts {
  /** Error findings that block: not waived and not relaxed. */
  readonly errors: number;
  /** Warning findings not waived, relaxed errors included. */
  readonly warnings: number;
  readonly waived: number;
  /** Errors reported as warnings because of the relax switch. */
  readonly relaxed: number;
}

export function countFindings(report: LintReport): LintCounts {
  const open = report.findings.filter((finding) => !finding.waived);
  return {
    errors: open.filter((finding) => finding.level === "error").length,
    warnings: open.filter((finding) => finding.level === "warning").length,
    waived: report.findings.length - open.length,
    relaxed: open.filter((finding) => finding.relaxed).length,
  };
}
