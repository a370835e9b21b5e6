/**
 * A lint report as a person reads it (one finding per line with its fix underneath), as one JSON
 * document for a program, and as log events for a deploy. A finding the relax switch turned into a
 * warning says so on every line about it.
 */
import type { Logger } from "../shared/log.ts";
import { plural } from "../shared/table-format.ts";
import { RELAXED_NOTE } from "./lint-config.ts";
import { LINT_MODE_VARIABLE } from "../shared/config.ts";
import { countFindings, type Finding, type LintCounts, type LintReport, type SkippedFile } from "./findings.ts";

/** `file:line: level rule: message`, where level is error, warning or waived. */
function findingHeadline(finding: Finding): string {
  const level = finding.waived ? "waived" : finding.level;
  const relaxed = finding.relaxed ? ` (${RELAXED_NOTE})` : "";
  return `${finding.file}:${finding.line}: ${level} ${finding.rule}${relaxed}: ${finding.message}`;
}

/** The headline, then the reason of a waived finding or the fix of any other. */
function findingLines(finding: Finding): string[] {
  return [findingHeadline(finding), finding.waived ? `    reason: ${finding.waived.reason}` : `    fix: ${finding.fix}`];
}

/** What `check` prints for a person: every finding, then every skipped file. Empty when there are none. */
export function lintText(report: LintReport): string {
  const skipped = report.skipped.map((skip) => `${skip.file}: skipped (${skip.reason})`);
  return [...report.findings.flatMap(findingLines), ...skipped].join("\n");
}

export interface FindingDocument {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly rule: string;
  readonly level: "error" | "warning";
  readonly source: "squawk" | "job";
  readonly message: string;
  readonly fix: string;
  readonly waived: { readonly reason: string } | null;
  readonly relaxed: boolean;
}

/** What `check --json` prints: always the same keys, null where there is no value. */
export interface LintDocument {
  readonly files: readonly string[];
  readonly skipped: readonly SkippedFile[];
  readonly findings: readonly FindingDocument[];
  readonly notices: readonly string[];
  readonly squawk_ran: boolean;
  readonly config: string | null;
  /** `MIGRATE_LINT=warn` when the relax switch is on, else null. */
  readonly relaxed_by: string | null;
  readonly summary: LintCounts & { readonly files: number; readonly skipped: number };
}

export function lintDocument(report: LintReport): LintDocument {
  return {
    files: report.linted,
    skipped: report.skipped,
    findings: report.findings.map((finding) => ({ ...finding, waived: finding.waived ?? null })),
    notices: report.notices,
    squawk_ran: report.squawkRan,
    config: report.configPath ?? null,
    relaxed_by: report.mode === "warn" ? `${LINT_MODE_VARIABLE}=warn` : null,
    summary: { ...countFindings(report), files: report.linted.length, skipped: report.skipped.length },
  };
}

/** "3 files linted (1 TypeScript file skipped): 1 error, 2 warnings, 4 waived". */
export function describeLintCounts(report: LintReport): string {
  const counts = countFindings(report);
  const skipped = report.skipped.length > 0 ? ` (${plural(report.skipped.length, "TypeScript file")} skipped)` : "";
  const relaxed = counts.relaxed > 0 ? ` (${plural(counts.relaxed, "error")} among them, ${RELAXED_NOTE})` : "";
  return `${plural(report.linted.length, "file")} linted${skipped}: ${plural(counts.errors, "error")}, ${plural(counts.warnings, "warning")}${relaxed}, ${counts.waived} waived`;
}

/**
 * The notices, and whenever the relax switch is set, that it is: warnings, one event a line. Said
 * even when it changed nothing, so a switch left on after its deploy never goes unnoticed.
 */
export function logLintNotices(report: LintReport, logger: Logger): void {
  for (const notice of report.notices) logger.warn("lint_notice", `lint: ${notice}`);
  if (report.mode !== "warn" || report.linted.length === 0) return;
  const { relaxed } = countFindings(report);
  const effect = relaxed > 0 ? `${plural(relaxed, "error")} reported as warnings for this run` : "no error to report as a warning this time; remove the variable";
  logger.warn("lint_relaxed", `lint gate relaxed by ${LINT_MODE_VARIABLE}=warn: ${effect}`, { relaxed });
}

/**
 * Everything but the errors as log events, one a line (`up` refuses with the errors themselves):
 * skipped files, notices, warnings, waived findings, and a closing count.
 */
export function logLintReport(report: LintReport, logger: Logger): void {
  for (const skip of report.skipped) logger.info("lint_skipped", `lint: ${skip.file} skipped (${skip.reason})`, { file: skip.file });
  for (const finding of report.findings) logFinding(finding, logger);
  logLintNotices(report, logger);
  if (report.linted.length > 0) logger.info("lint_finished", `lint: ${describeLintCounts(report)}`, { ...countFindings(report), files: report.linted.length });
}

function logFinding(finding: Finding, logger: Logger): void {
  const attributes = {
    file: finding.file,
    line: finding.line,
    column: finding.column,
    rule: finding.rule,
    source: finding.source,
    // Not `level`: that key is the log line's own level in JSON logs.
    rule_level: finding.relaxed ? "error" : finding.level,
    relaxed: finding.relaxed || undefined,
  };
  const where = `lint ${finding.file}:${finding.line}: ${finding.rule}`;
  if (finding.waived) {
    logger.info("lint_waived", `${where} waived: ${finding.waived.reason}`, { ...attributes, reason: finding.waived.reason });
  } else if (finding.level === "warning") {
    const relaxed = finding.relaxed ? ` (${RELAXED_NOTE})` : "";
    logger.warn("lint_warning", `${where}${relaxed}: ${finding.message} (fix: ${finding.fix})`, { ...attributes, fix: finding.fix });
  }
}
