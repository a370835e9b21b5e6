/**
 * Waivers: `-- lint:allow <rule> <reason>` next to a statement silences that rule for that
 * statement. A waiver sits in the lines between the previous statement and its own, inside the
 * statement, or after it on the statement's last line. A waiver only counts with a reason, and a
 * waived finding is still reported, with the reason, so nothing is ever dropped silently.
 *
 * Comments are found with PostgreSQL's own scanner, so `-- lint:allow` inside a string or a
 * function body is never taken for a waiver.
 */
import { lineAtByte } from "../files/source-position.ts";
import type { SqlSource } from "../files/migration-files.ts";
import type { SqlComment, Statement } from "../files/sql-statements.ts";

export const WAIVER_SYNTAX = "-- lint:allow <rule> <reason>";
/** Every waiver comment holds it: the parts of a file without it need no scanning for waivers. */
export const WAIVER_MARK = "lint:allow";

export interface Waiver {
  /** Undefined when the comment names no rule. */
  readonly rule: string | undefined;
  /** Empty when the comment gives none. */
  readonly reason: string;
  readonly byteOffset: number;
  /** Index of the statement it applies to; undefined after the last statement. */
  readonly statementIndex: number | undefined;
}

const WAIVER_COMMENT = /^--\s*lint:allow\b(?:\s+(\S+))?(?:\s+(.*))?$/;

/** Every waiver comment in the file (from the parser's scanner), each tied to its statement. */
export function findWaivers(file: SqlSource, statements: readonly Statement[], comments: readonly SqlComment[]): Waiver[] {
  return comments.flatMap((comment) => {
    const match = WAIVER_COMMENT.exec(comment.text.trim());
    if (!match) return [];
    return [{ rule: match[1], reason: (match[2] ?? "").trim(), byteOffset: comment.byteOffset, statementIndex: statementFor(file.source, statements, comment.byteOffset) }];
  });
}

/**
 * The statement a finding at `byteOffset` belongs to: the last one starting at or before it. A
 * binary search over the statements, which are in file order: a large file has tens of thousands.
 */
export function statementIndexAt(statements: readonly Statement[], byteOffset: number): number | undefined {
  let after = 0;
  let end = statements.length;
  while (after < end) {
    const middle = (after + end) >>> 1;
    if (statements[middle]!.byteOffset <= byteOffset) after = middle + 1;
    else end = middle;
  }
  return after === 0 ? undefined : after - 1;
}

function statementFor(source: Uint8Array, statements: readonly Statement[], offset: number): number | undefined {
  const before = statementIndexAt(statements, offset);
  const previous = before === undefined ? undefined : statements[before];
  if (previous) {
    const end = previous.byteOffset + encoder.encode(previous.text).length;
    if (offset < end || lineAtByte(source, end) === lineAtByte(source, offset)) return before;
  }
  const next = (before ?? -1) + 1;
  return next < statements.length ? next : undefined;
}

const encoder = new TextEncoder();

/** What the gate knows about a rule a waiver names, to tell a stale waiver from one it cannot judge. */
export type RuleState = "checked" | "off" | "not-run" | "unknown";

export interface FindingAtStatement {
  readonly rule: string;
  readonly statementIndex: number | undefined;
}

/** The rules about waivers themselves; a waiver cannot silence them. */
export const WAIVER_RULES = ["waiver-without-reason", "stale-waiver"] as const;

export interface WaiverProblem {
  readonly rule: (typeof WAIVER_RULES)[number];
  readonly byteOffset: number;
  readonly message: string;
}

export interface WaiverResult<F> {
  readonly findings: (F & { readonly waivedBecause: string | undefined })[];
  readonly problems: WaiverProblem[];
}

/** `unwaivable` says why a rule's findings are refused whatever a waiver says; such a waiver silences nothing, and says so. */
export function applyWaivers<F extends FindingAtStatement>(
  findings: readonly F[],
  waivers: readonly Waiver[],
  ruleState: (rule: string) => RuleState,
  unwaivable: (rule: string) => string | undefined = () => undefined,
): WaiverResult<F> {
  const valid = validWaiversByStatementAndRule(waivers.filter((waiver) => waiver.rule === undefined || unwaivable(waiver.rule) === undefined));
  const used = new Set<Waiver>();
  const judged = findings.map((finding) => {
    const waiver = finding.statementIndex === undefined ? undefined : valid.get(waiverKey(finding.statementIndex, finding.rule));
    if (waiver) used.add(waiver);
    return { ...finding, waivedBecause: waiver?.reason };
  });
  const problems = waivers.flatMap((waiver) => waiverProblem(waiver, used.has(waiver), ruleState, unwaivable));
  return { findings: judged, problems };
}

/** The first waiver with a reason for each statement and rule: looked up once per finding, of which a large file has many. */
function validWaiversByStatementAndRule(waivers: readonly Waiver[]): Map<string, Waiver> {
  const valid = new Map<string, Waiver>();
  for (const waiver of waivers) {
    if (waiver.rule === undefined || waiver.reason === "" || waiver.statementIndex === undefined) continue;
    const key = waiverKey(waiver.statementIndex, waiver.rule);
    if (!valid.has(key)) valid.set(key, waiver);
  }
  return valid;
}

function waiverKey(statementIndex: number, rule: string): string {
  return `${statementIndex} ${rule}`;
}

function waiverProblem(waiver: Waiver, used: boolean, ruleState: (rule: string) => RuleState, unwaivable: (rule: string) => string | undefined): WaiverProblem[] {
  const at = waiver.byteOffset;
  if (waiver.rule === undefined) {
    return [{ rule: "waiver-without-reason", byteOffset: at, message: `"-- lint:allow" names no rule and gives no reason; write it as ${WAIVER_SYNTAX}` }];
  }
  if (waiver.reason === "") {
    return [{ rule: "waiver-without-reason", byteOffset: at, message: `the waiver for ${waiver.rule} gives no reason, so it does not silence ${waiver.rule}` }];
  }
  if (used) return [];
  const refusedAnyway = unwaivable(waiver.rule);
  if (refusedAnyway) return [{ rule: "stale-waiver", byteOffset: at, message: `the waiver for ${waiver.rule} silences nothing: no waiver can, as ${refusedAnyway}` }];
  const stale = staleMessage(waiver.rule, waiver.statementIndex, ruleState(waiver.rule));
  return stale ? [{ rule: "stale-waiver", byteOffset: at, message: stale }] : [];
}

function staleMessage(rule: string, statementIndex: number | undefined, state: RuleState): string | undefined {
  if (state === "unknown") return `the waiver names ${rule}, which is not a lint rule`;
  if (statementIndex === undefined) return `the waiver for ${rule} is below the last statement, so it applies to none`;
  if (state === "off") return `the waiver for ${rule} silences nothing: lint.toml turns ${rule} off`;
  if (state === "not-run") return undefined;
  return `the waiver for ${rule} silences nothing: ${rule} did not fire on this statement`;
}
