/**
 * The lint gate: squawk plus the job's own rules over SQL migration files, rule levels from
 * lint.toml, waivers from the files, and the one-run relax switch. `check` runs it over every file
 * without a database; `up` runs it over the pending files before applying any.
 */
import { RefusedError, type Refusal } from "../shared/errors.ts";
import { checkpoints, type Checkpoint } from "../shared/cancellation.ts";
import { lineColumnAtByte } from "../files/source-position.ts";
import type { Logger } from "../shared/log.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { SqlComment, SqlParser, Statement } from "../files/sql-statements.ts";
import { isKnownRule, ruleSpec, squawkRuleNames, RULES, type FindingLevel, type RuleSource } from "./catalog.ts";
import { RELAXED_NOTE, levelOf, readLintConfig, type LintConfig } from "./lint-config.ts";
import type { LintMode } from "../shared/config.ts";
import { jobRuleFindings } from "./rules.ts";
import { runSquawk, SquawkFailedError, type Squawk, type SquawkFinding } from "./squawk.ts";
import { applyWaivers, findWaivers, statementIndexAt, WAIVER_MARK, WAIVER_RULES, WAIVER_SYNTAX, type RuleState } from "./waivers.ts";
import { logLintReport } from "./report.ts";
import type { Finding, LintReport } from "./findings.ts";

export interface LintDeps {
  readonly migrationsDir: string;
  /** Reads lint.toml; a missing file (ENOENT) means every rule has its default level. */
  readonly readFile: (path: string) => Promise<Uint8Array>;
  readonly loadParser: () => Promise<SqlParser>;
  readonly mode: LintMode;
  /** squawk as installed on this machine (or a location that says why it is not). */
  readonly squawk: Squawk;
  /** Aborted by SIGTERM, SIGINT or the run's time budget: linting stops, and squawk is killed. */
  readonly signal?: AbortSignal;
}

export const TYPESCRIPT_SKIP_REASON = "TypeScript migrations are not linted";

/**
 * Lints the SQL files among `files` (TypeScript ones are listed as skipped). With no SQL file it
 * does nothing at all: no config, no parser, no squawk. Throws RefusedError on a syntax error (every
 * file's at once) and ConfigError on a bad lint.toml; lint findings never throw.
 */
export async function lintMigrations(files: readonly MigrationFile[], deps: LintDeps): Promise<LintReport> {
  const sqlFiles = files.filter((file) => file.language === "sql");
  const skipped = files.filter((file) => file.language === "typescript").map((file) => ({ file: file.fileName, reason: TYPESCRIPT_SKIP_REASON }));
  const empty = { linted: [], skipped, findings: [], notices: [], squawkRan: false, mode: deps.mode, configPath: undefined };
  if (sqlFiles.length === 0) return empty;

  const config = await readLintConfig(deps.migrationsDir, deps.readFile);
  const checkpoint = checkpoints(deps.signal, "linting the migration files");
  // squawk works in its own process while this one loads the parser and parses the files.
  const squawking = squawkFindings(sqlFiles, config, deps, checkpoint);
  const parsed = await parseAll(sqlFiles, await deps.loadParser(), checkpoint).catch(async (error: unknown) => {
    await squawking.catch(() => undefined);
    throw error;
  });
  const squawk = await squawking;
  const context = { config, mode: deps.mode, squawkRan: squawk.ran };
  const squawkByFile = byFile(squawk.findings);
  const findingsByFile: Finding[][] = [];
  for (const parsedFile of parsed) {
    const raw = [...(await jobFindingsOf(parsedFile, checkpoint)), ...(squawkByFile.get(parsedFile.file) ?? []).map(fromSquawk)];
    findingsByFile.push(await fileFindings(parsedFile, raw, context, checkpoint));
  }
  const findings = findingsByFile.flat();
  return { ...empty, linted: sqlFiles.map((file) => file.fileName), findings, notices: squawk.notices, squawkRan: squawk.ran, configPath: config.path };
}

interface ParsedFile {
  readonly file: MigrationFile;
  readonly statements: Statement[];
  readonly comments: SqlComment[];
}

/** Each file is parsed in one piece; between files, and while looking for waivers, the event loop gets its turn. */
async function parseAll(files: readonly MigrationFile[], parser: SqlParser, checkpoint: Checkpoint): Promise<ParsedFile[]> {
  const refusals: Refusal[] = [];
  const parsed: ParsedFile[] = [];
  for (const file of files) {
    await checkpoint();
    try {
      parsed.push({ file, statements: parser.statements(file), comments: await parser.comments(file, WAIVER_MARK, checkpoint) });
    } catch (error) {
      if (!(error instanceof RefusedError)) throw error;
      refusals.push(...error.refusals);
    }
  }
  if (refusals.length > 0) throw new RefusedError(refusals);
  return parsed;
}

interface SquawkOutcome {
  readonly findings: readonly SquawkFinding[];
  readonly ran: boolean;
  readonly notices: readonly string[];
}

/**
 * At most two squawk processes, run side by side: one for files the job wraps in a transaction
 * (so squawk knows a table created earlier in the file is new), one for no-transaction files.
 */
async function squawkFindings(files: readonly MigrationFile[], config: LintConfig, deps: LintDeps, checkpoint: Checkpoint): Promise<SquawkOutcome> {
  const { location, runProcess } = deps.squawk;
  if ("unavailable" in location) return { findings: [], ran: false, notices: [location.unavailable] };
  const include = squawkRuleNames().filter((rule) => RULES[rule]?.optIn && levelOf(config, rule) !== "off");
  const batches = [true, false]
    .map((assumeInTransaction) => ({ assumeInTransaction, files: files.filter((file) => file.transactional === assumeInTransaction) }))
    .filter((batch) => batch.files.length > 0);
  try {
    const found = await Promise.all(
      batches.map((batch) => runSquawk(location.binary, runProcess, batch.files, { assumeInTransaction: batch.assumeInTransaction, include, signal: deps.signal })),
    );
    return { findings: found.flat(), ran: true, notices: [] };
  } catch (error) {
    // A squawk the signal killed did not fail: the run was cancelled, and the checkpoint says so.
    await checkpoint();
    if (!(error instanceof SquawkFailedError) || deps.mode !== "warn") throw error;
    return { findings: [], ran: false, notices: [`${error.message.split("\n")[0]}; only the job's own rules ran (${RELAXED_NOTE})`] };
  }
}

function byFile(findings: readonly SquawkFinding[]): Map<MigrationFile, SquawkFinding[]> {
  const grouped = new Map<MigrationFile, SquawkFinding[]>();
  for (const finding of findings) {
    const ofFile = grouped.get(finding.file) ?? [];
    ofFile.push(finding);
    grouped.set(finding.file, ofFile);
  }
  return grouped;
}

/** A finding before levels and waivers: where it points and what it says. */
interface RawFinding {
  readonly rule: string;
  readonly source: RuleSource;
  readonly byteOffset: number;
  readonly message: string;
  readonly help: string | undefined;
}

async function jobFindingsOf({ file, statements }: ParsedFile, checkpoint: Checkpoint): Promise<RawFinding[]> {
  return (await jobRuleFindings(file, statements, checkpoint)).map((finding) => ({ ...finding, source: "job", help: undefined }));
}

function fromSquawk(finding: SquawkFinding): RawFinding {
  return { rule: finding.rule, source: "squawk", byteOffset: finding.byteOffset, message: finding.message, help: finding.help };
}

interface FileContext {
  readonly config: LintConfig;
  readonly mode: LintMode;
  readonly squawkRan: boolean;
}

async function fileFindings({ file, statements, comments }: ParsedFile, raw: readonly RawFinding[], context: FileContext, checkpoint: Checkpoint): Promise<Finding[]> {
  const reported = raw
    .flatMap((finding) => withLevel(finding, context.config))
    .map((finding) => ({ ...finding, statementIndex: statementIndexAt(statements, finding.byteOffset) }));
  const { findings, problems } = applyWaivers(reported, findWaivers(file, statements, comments), (rule) => ruleState(rule, context), unwaivableBecause);
  const waiverFindings = problems
    .map((problem) => ({ ...problem, source: "job" as const, help: undefined, waivedBecause: undefined }))
    .flatMap((finding) => withLevel(finding, context.config));
  const finished: Finding[] = [];
  for (const finding of [...findings, ...waiverFindings]) {
    await checkpoint();
    finished.push(finish(file, finding, context.mode));
  }
  return finished.sort(byPosition);
}

/** The finding with its configured level, or nothing when lint.toml turns its rule off. */
function withLevel<F extends { readonly rule: string }>(finding: F, config: LintConfig): (F & { readonly level: FindingLevel })[] {
  const level = levelOf(config, finding.rule);
  return level === "off" ? [] : [{ ...finding, level }];
}

function unwaivableBecause(rule: string): string | undefined {
  return isKnownRule(rule) ? ruleSpec(rule).unwaivable : undefined;
}

function ruleState(rule: string, context: FileContext): RuleState {
  if (!isKnownRule(rule)) return "unknown";
  if (levelOf(context.config, rule) === "off") return "off";
  return ruleSpec(rule).source === "squawk" && !context.squawkRan ? "not-run" : "checked";
}

type LeveledFinding = RawFinding & { readonly level: FindingLevel; readonly waivedBecause: string | undefined };

function finish(file: MigrationFile, finding: LeveledFinding, mode: LintMode): Finding {
  const waived = finding.waivedBecause === undefined ? undefined : { reason: finding.waivedBecause };
  const relaxed = mode === "warn" && finding.level === "error" && !waived;
  const { line, column } = lineColumnAtByte(file.source, finding.byteOffset);
  return {
    file: file.fileName,
    line,
    column,
    rule: finding.rule,
    level: relaxed ? "warning" : finding.level,
    source: finding.source,
    message: finding.message,
    fix: ruleSpec(finding.rule).fix ?? finding.help ?? `see https://squawkhq.com/docs/${finding.rule}`,
    waived,
    relaxed,
  };
}

function byPosition(a: Finding, b: Finding): number {
  return a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule);
}

/** The findings that block, as refusals (check "lint"): file:line, rule and message, and the fix. */
export function lintRefusals(report: LintReport): Refusal[] {
  return report.findings
    .filter((finding) => finding.level === "error" && !finding.waived)
    .map((finding) => ({
      check: "lint",
      file: finding.file,
      line: finding.line,
      message: `${finding.rule}: ${finding.message}`,
      resolution:
        isAboutWaivers(finding.rule) || unwaivableBecause(finding.rule)
          ? finding.fix
          : `${finding.fix}; if the rule does not apply here, say why above the statement: ${WAIVER_SYNTAX.replace("<rule>", finding.rule)}`,
    }));
}

function isAboutWaivers(rule: string): boolean {
  return (WAIVER_RULES as readonly string[]).includes(rule);
}

/**
 * The gate `up` runs over the pending files before applying anything: logs skipped files,
 * warnings, waived findings and notices one event a line, then refuses (exit 4) with every error
 * that remains, each with file:line, rule and fix. Nothing pending: nothing is done.
 */
export async function enforceLintGate(pending: readonly MigrationFile[], deps: LintDeps, logger: Logger): Promise<LintReport> {
  const report = await lintMigrations(pending, deps);
  logLintReport(report, logger);
  const refusals = lintRefusals(report);
  if (refusals.length > 0) throw new RefusedError(refusals);
  return report;
}
