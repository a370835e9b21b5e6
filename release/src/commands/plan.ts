/**
 * `plan`: what `up` would do now, without doing any of it. The files it would apply, in order, each
 * statement on one line; the held files it would skip; and every reason it would refuse. It decides
 * with up's own functions (classify, planUp, planMigrations), so the two cannot disagree. Read-only
 * like status: no lock, no tracking table, no held rows.
 */
import { ExitCode, RefusedError, type Refusal } from "../shared/errors.ts";
import { planUp, type MigrationEntry } from "../run/migration-state.ts";
import { planMigrations } from "../run/runner.ts";
import { lintMigrations, lintRefusals } from "../lint/lint.ts";
import { summarizeStatement } from "../files/statement-summary.ts";
import { plural } from "../shared/table-format.ts";
import type { MigrationFile, MigrationLanguage } from "../files/migration-files.ts";
import type { SqlParser, Statement } from "../files/sql-statements.ts";
import type { ReadOnlyRun } from "./context.ts";
import { readMigrationState, refusalDocument, refusalLines, type RefusalDocument } from "./status.ts";

export interface PlanOptions {
  /** --json: one JSON document on stdout instead of the text. */
  readonly json: boolean;
  /** As up --allow-out-of-order would. */
  readonly allowOutOfOrder: boolean;
}

type OutOfOrderReason = NonNullable<MigrationEntry["outOfOrderReason"]>;

/** One file up would apply, with the statements it would send. */
interface FilePreview {
  readonly file: MigrationFile;
  readonly outOfOrder: OutOfOrderReason | undefined;
  /** Empty for a TypeScript migration, and for a SQL file that does not parse (its refusal says why). */
  readonly statements: readonly Statement[];
}

interface UpPreview {
  readonly apply: readonly FilePreview[];
  readonly held: readonly MigrationFile[];
  readonly refusals: readonly Refusal[];
}

/** `refuse`: up would exit 4 and apply nothing, even though `would_apply` lists files. */
export type PlanOutcome = "apply" | "nothing_to_do" | "refuse";

export interface PlanDocument {
  readonly table: string;
  readonly outcome: PlanOutcome;
  readonly would_apply: readonly {
    readonly version: number;
    readonly name: string;
    readonly file: string;
    readonly language: MigrationLanguage;
    readonly mode: "one_transaction" | "no_transaction";
    readonly out_of_order: OutOfOrderReason | null;
    readonly statements: readonly { readonly line: number; readonly kind: string; readonly summary: string }[];
  }[];
  readonly held: readonly { readonly version: number; readonly name: string; readonly file: string; readonly reason: string }[];
  readonly refusals: readonly RefusalDocument[];
}

export async function plan(run: ReadOnlyRun, options: PlanOptions): Promise<ExitCode> {
  const started = performance.now();
  const preview = await previewUp(run, options);
  const outcome = outcomeOf(preview);
  run.writeDocument(options.json ? JSON.stringify(planDocument(run.storage.qualifiedName, preview)) : planText(preview));
  run.logger.info("run_finished", `plan: ${OUTCOME_TEXT[outcome](preview)}${heldSuffix(preview)}`, {
    outcome,
    would_apply: preview.apply.length,
    held: preview.held.length,
    refusals: preview.refusals.length,
    duration_ms: Math.round(performance.now() - started),
  });
  return outcome === "refuse" ? ExitCode.refused : ExitCode.success;
}

async function previewUp(run: ReadOnlyRun, options: PlanOptions): Promise<UpPreview> {
  const entries = await readMigrationState(run, { allowOutOfOrder: options.allowOutOfOrder });
  const state = planUp(entries);
  if (state.pending.length === 0) return { apply: [], held: state.held, refusals: state.refusals };

  const parser = await run.loadParser();
  const outOfOrder = new Map(state.outOfOrder.map((entry) => [entry.version, entry.outOfOrderReason]));
  return {
    apply: state.pending.map((file) => ({ file, outOfOrder: outOfOrder.get(file.version), statements: statementsToShow(file, parser) })),
    held: state.held,
    // up stops at the first group; plan lists them all, so one look shows everything to fix.
    refusals: [...state.refusals, ...(await lintGateRefusals(state.pending, run)), ...(await fileRefusals(state.pending, parser, run.lint.signal))],
  };
}

/** What up's lint gate refuses. A file that does not parse is left to fileRefusals, which names its line. */
async function lintGateRefusals(files: readonly MigrationFile[], run: ReadOnlyRun): Promise<readonly Refusal[]> {
  try {
    return lintRefusals(await lintMigrations(files, run.lint));
  } catch (error) {
    if (!(error instanceof RefusedError)) throw error;
    return [];
  }
}

/** What up's own check of the pending files (syntax, transaction control, empty, bad module) refuses. */
async function fileRefusals(files: readonly MigrationFile[], parser: SqlParser, signal: AbortSignal | undefined): Promise<readonly Refusal[]> {
  try {
    await planMigrations(files, parser, signal);
    return [];
  } catch (error) {
    if (!(error instanceof RefusedError)) throw error;
    return error.refusals;
  }
}

/** Parsed apart from up's check so that a file refused for its content still shows its statements. */
function statementsToShow(file: MigrationFile, parser: SqlParser): readonly Statement[] {
  if (file.language === "typescript") return [];
  try {
    return parser.statements(file);
  } catch (error) {
    if (error instanceof RefusedError) return [];
    throw error;
  }
}

function outcomeOf(preview: UpPreview): PlanOutcome {
  if (preview.refusals.length > 0) return "refuse";
  return preview.apply.length > 0 ? "apply" : "nothing_to_do";
}

const OUTCOME_TEXT: Record<PlanOutcome, (preview: UpPreview) => string> = {
  apply: ({ apply }) => `up would apply ${plural(apply.length, "migration")}`,
  nothing_to_do: () => "nothing to apply",
  refuse: ({ refusals }) => `up would refuse (${plural(refusals.length, "problem")}) and apply nothing`,
};

function heldSuffix({ held }: UpPreview): string {
  return held.length > 0 ? `; ${plural(held.length, "held file")} skipped` : "";
}

function planDocument(table: string, preview: UpPreview): PlanDocument {
  return {
    table,
    outcome: outcomeOf(preview),
    would_apply: preview.apply.map(({ file, outOfOrder, statements }) => ({
      version: file.version,
      name: file.name,
      file: file.fileName,
      language: file.language,
      mode: file.transactional ? "one_transaction" : "no_transaction",
      out_of_order: outOfOrder ?? null,
      statements: statements.map((statement) => ({ line: statement.line, kind: statement.kind, summary: summarizeStatement(statement) })),
    })),
    held: preview.held.map((file) => ({ version: file.version, name: file.name, file: file.fileName, reason: file.holdReason ?? "" })),
    refusals: preview.refusals.map(refusalDocument),
  };
}

function planText(preview: UpPreview): string {
  const { apply, held, refusals } = preview;
  const lines: string[] = [];
  if (apply.length === 0) {
    lines.push(refusals.length > 0 ? "nothing pending to apply" : "nothing to apply: every migration file is applied or held");
  } else {
    const when = refusals.length > 0 ? "once the problems below are resolved, " : "";
    lines.push(`${when}up would apply ${plural(apply.length, "migration")}, in this order:`, ...apply.flatMap(fileLines));
  }
  if (held.length > 0) {
    lines.push("", `up would skip ${plural(held.length, "held file")} (and record ${held.length === 1 ? "it" : "them"} as held):`);
    lines.push(...held.map((file) => `  ${file.fileName}: ${file.holdReason}`));
  }
  if (refusals.length > 0) {
    lines.push("", `up would refuse (${plural(refusals.length, "problem")}) and apply nothing:`, ...refusals.flatMap(refusalLines));
  }
  return lines.join("\n");
}

function fileLines({ file, outOfOrder, statements }: FilePreview): string[] {
  const order = outOfOrder ? `; out of order (${outOfOrder})` : "";
  const width = String(Math.max(0, ...statements.map((statement) => statement.line))).length;
  return [
    `  ${file.fileName}: ${modeText(file)}${order}`,
    ...statements.map((statement) => `    line ${String(statement.line).padStart(width)}  ${summarizeStatement(statement)}`),
  ];
}

function modeText(file: MigrationFile): string {
  if (file.language === "typescript") return "TypeScript up() in one transaction";
  return file.transactional ? "one transaction" : "no transaction (each statement commits on its own)";
}
