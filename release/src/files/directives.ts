/**
 * Header directives: SQL comments at the top of a migration file, `-- migrate:<name> [value]`.
 * Each directive's value is parsed with zod, like every other input from outside.
 */
import { z } from "zod";
import { duration } from "../shared/duration.ts";
import { DIRECTIVE_VALUE_CHECK, type Refusal } from "../shared/errors.ts";

export interface Directives {
  /** False when the file opts out with `-- migrate:no-transaction`. */
  readonly transactional: boolean;
  /** Set by `-- migrate:hold <reason>`: the file stays in the repo but is not applied. */
  readonly holdReason: string | undefined;
  /** `-- migrate:lock-timeout 10s`: this file's lock_timeout instead of MIGRATE_LOCK_TIMEOUT. */
  readonly lockTimeoutMs: number | undefined;
  /** `-- migrate:statement-timeout 30min`: this file's statement_timeout instead of MIGRATE_STATEMENT_TIMEOUT. */
  readonly statementTimeoutMs: number | undefined;
}

/** SQL files write directives as `-- migrate:…`; TypeScript files as `// migrate:…`. */
export type CommentStyle = "--" | "//";
/** Built once per style: a folder of 2,000 files would otherwise compile them 4,000 times. */
const LINE_PATTERNS: Readonly<Record<CommentStyle, { readonly directive: RegExp; readonly commentOrBlank: RegExp }>> = {
  "--": { directive: /^--\s*migrate:(\S*)\s*(.*)$/, commentOrBlank: /^(--.*)?$/ },
  "//": { directive: /^\/\/\s*migrate:(\S*)\s*(.*)$/, commentOrBlank: /^(\/\/.*)?$/ },
};
const DIRECTIVE_MARK = "migrate:";

const noValue = z.literal("", { error: "takes no value" });
const requiredText = z.string().min(1, { error: "needs a value (for hold: the reason it is held)" });

const DIRECTIVE_VALUES = {
  "no-transaction": noValue,
  hold: requiredText,
  "lock-timeout": duration,
  "statement-timeout": duration,
} as const;
type DirectiveName = keyof typeof DIRECTIVE_VALUES;
type DirectiveValues = { [K in DirectiveName]?: z.output<(typeof DIRECTIVE_VALUES)[K]> };

function isDirectiveName(name: string): name is DirectiveName {
  return Object.hasOwn(DIRECTIVE_VALUES, name);
}

export interface DirectiveParse {
  readonly directives: Directives;
  readonly refusals: readonly Refusal[];
}

/**
 * Reads the directives in the file's header (the leading blank and `--` comment lines). A
 * directive-looking line further down is refused rather than ignored, because a hold that is
 * silently ignored would apply a migration somebody meant to keep back.
 */
export function parseDirectives(file: string, text: string, comment: CommentStyle = "--"): DirectiveParse {
  const patterns = LINE_PATTERNS[comment];
  const refusals: Refusal[] = [];
  const values: DirectiveValues = {};
  for (const { line, lineNumber, inHeader } of candidateLines(text, patterns.commentOrBlank)) {
    const match = patterns.directive.exec(line);
    if (!match) continue;
    const [, name = "", value = ""] = match;
    const refuse = (check: string, message: string, resolution: string) =>
      refusals.push({ check, file, line: lineNumber, message, resolution });
    if (!inHeader) {
      refuse("directive", `directive "${comment} migrate:${name}" appears after the first statement`, "move it to the top of the file, above any SQL");
    } else if (!isDirectiveName(name)) {
      refuse("directive", `unknown directive "${comment} migrate:${name}"`, `use one of: ${Object.keys(DIRECTIVE_VALUES).join(", ")}`);
    } else if (values[name] !== undefined) {
      refuse(DIRECTIVE_VALUE_CHECK, `directive "${comment} migrate:${name}" is given twice`, "keep one of the two lines");
    } else {
      const parsed = DIRECTIVE_VALUES[name].safeParse(value.trim());
      // The schema for `name` produced this value, so it has that directive's type.
      if (parsed.success) (values as Record<DirectiveName, unknown>)[name] = parsed.data;
      else refuse(DIRECTIVE_VALUE_CHECK, `directive "${comment} migrate:${name}" ${parsed.error.issues[0]?.message}`, `write it as ${comment} ${DIRECTIVE_USAGE[name]}`);
    }
  }
  return {
    directives: {
      transactional: values["no-transaction"] === undefined,
      holdReason: values.hold,
      lockTimeoutMs: values["lock-timeout"],
      statementTimeoutMs: values["statement-timeout"],
    },
    refusals,
  };
}

interface CandidateLine {
  /** The line, trimmed. */
  readonly line: string;
  readonly lineNumber: number;
  /** Whether every line up to and including this one is blank or a comment. */
  readonly inHeader: boolean;
}

/**
 * The lines a directive can be on: each line of the header, then only the lines that name one.
 * The rest of a long file is skipped with a search for the mark rather than split into lines.
 */
function* candidateLines(text: string, commentOrBlank: RegExp): Generator<CandidateLine> {
  let start = 0;
  let lineNumber = 1;
  let inHeader = true;
  for (;;) {
    if (!inHeader) {
      const mark = text.indexOf(DIRECTIVE_MARK, start);
      if (mark === -1) return;
      const lineStart = text.lastIndexOf("\n", mark - 1) + 1;
      lineNumber += newlinesBetween(text, start, lineStart);
      start = lineStart;
    }
    const end = text.indexOf("\n", start);
    const line = text.slice(start, end === -1 ? text.length : end).trim();
    inHeader &&= commentOrBlank.test(line);
    yield { line, lineNumber, inHeader };
    if (end === -1) return;
    start = end + 1;
    lineNumber++;
  }
}

function newlinesBetween(text: string, from: number, to: number): number {
  let count = 0;
  for (let at = text.indexOf("\n", from); at !== -1 && at < to; at = text.indexOf("\n", at + 1)) count++;
  return count;
}

const DIRECTIVE_USAGE: Record<DirectiveName, string> = {
  "no-transaction": "migrate:no-transaction",
  hold: "migrate:hold <reason>",
  "lock-timeout": "migrate:lock-timeout <duration, e.g. 10s>",
  "statement-timeout": "migrate:statement-timeout <duration, e.g. 30min>",
};
