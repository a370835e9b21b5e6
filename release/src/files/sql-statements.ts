/**
 * Splits migration SQL into statements with PostgreSQL's own parser (libpg-query), so that
 * `BEGIN ... END` inside a function body or a DO block is never mistaken for transaction control,
 * every statement knows the line it starts on, and the text the job shows of it has its password
 * literals masked.
 */
import type { ParseResult, ScanResult } from "libpg-query";
import { RefusedError, type Refusal, type SourceLocation } from "../shared/errors.ts";
import { maskPasswordLiterals, maskQuotedLiteral, type Scanner } from "./password-literals.ts";
import type { Checkpoint } from "../shared/cancellation.ts";
import { byteOffsetOfCharacter, lineAtByte, lineColumnAtByte } from "./source-position.ts";
import type { SqlSource } from "./migration-files.ts";

export interface Statement {
  /** The parse node's type, e.g. `CreateStmt`, `TransactionStmt`. */
  readonly kind: string;
  /** The parse node itself (libpg-query's JSON AST), for describing what the statement does. */
  readonly node: Record<string, unknown>;
  /** The statement as written: what is sent to the server, and never printed or stored (it may hold a password). */
  readonly text: string;
  /** The text with its password literals masked: what the job prints and stores of the statement. */
  readonly safeText: string;
  /** The password literals' values, as the server reads them and as the file spells them: the redactor masks them anywhere. */
  readonly secrets: readonly string[];
  /** Byte offset of the statement's first character in the file. */
  readonly byteOffset: number;
  readonly line: number;
}

/** A line comment or a block comment, found by PostgreSQL's own scanner (so never one inside a string). */
export interface SqlComment {
  readonly text: string;
  readonly byteOffset: number;
}

export interface SqlParser {
  /**
   * Statements of a file in order. Throws RefusedError on a file over the size limit (before
   * parsing it) and on a syntax error, naming file:line.
   */
  statements(file: SqlSource): Statement[];
  /**
   * The comments of a file whose text includes `mentioning`, in order. Only the parts of the file
   * that contain it are scanned, piece by piece, so a large file costs little and never holds up
   * the event loop for long. Throws like `statements`.
   */
  comments(file: SqlSource, mentioning: string, checkpoint: Checkpoint): Promise<SqlComment[]>;
}

/**
 * The largest SQL file the job parses: 4 MiB. libpg-query parses a file in one synchronous call,
 * during which SIGTERM waits, and keeps every statement's parse tree. Measured on a 2-core build
 * machine, the worst 4 MiB files (287,000 one-line statements, or 134,000 with a lint finding
 * each) parse in 1 to 1.7 s, well inside Railway's 5-second grace, and the run peaks near 1.1 GB;
 * a file of twice that takes 2.6 s and more than 1.1 GB for the parse alone. Larger files are
 * refused before they are parsed (README.md, "Files").
 */
export const SQL_FILE_LIMIT_BYTES = 4 * 1024 * 1024;

/**
 * Loads the parser, a WebAssembly module instantiated when it is imported (about 20 ms and 20 MB):
 * done only when there is SQL to parse, never on a deploy with nothing pending.
 */
/** The parts of libpg-query the job uses. */
export type ParserModule = Pick<typeof import("libpg-query"), "loadModule" | "parseSync" | "scanSync">;

/**
 * `importModule` loads libpg-query; the entry passes one that finds it on disk, beside the job,
 * since the compiled job cannot carry its WebAssembly file.
 */
export function loadSqlParser(importModule: () => Promise<ParserModule> = () => import("libpg-query")): Promise<SqlParser> {
  parserLoading ??= createParser(importModule);
  return parserLoading;
}

let parserLoading: Promise<SqlParser> | undefined;

type ParseOutcome = { readonly statements: Statement[] } | { readonly refused: RefusedError };

/**
 * One parser per process, remembering each file's statements, or why it refused the file: the
 * lint gate, the planner and `plan` ask about the same files, and a large file is parsed once.
 */
async function createParser(importModule: () => Promise<ParserModule>): Promise<SqlParser> {
  const { loadModule, parseSync, scanSync } = await importModule();
  await loadModule();
  const parsed = new WeakMap<SqlSource, ParseOutcome>();
  const statements = (file: SqlSource) => {
    const outcome = parsed.get(file) ?? parseOutcome(file, parseSync, scanSync);
    parsed.set(file, outcome);
    if ("refused" in outcome) throw outcome.refused;
    return outcome.statements;
  };
  return {
    statements,
    comments: (file, mentioning, checkpoint) => scanComments(file, statements(file), mentioning, scanSync, checkpoint),
  };
}

function parseOutcome(file: SqlSource, parseSync: (sql: string) => ParseResult, scan: Scanner): ParseOutcome {
  try {
    return { statements: splitStatements(file, parseSync, scan) };
  } catch (error) {
    if (!(error instanceof RefusedError)) throw error;
    return { refused: error };
  }
}

function splitStatements(file: SqlSource, parseSync: (sql: string) => ParseResult, scan: Scanner): Statement[] {
  if (file.source.length > SQL_FILE_LIMIT_BYTES) throw new RefusedError([sizeRefusal(file)]);
  let result: ParseResult;
  try {
    result = parseSync(file.text);
  } catch (error) {
    throw new RefusedError([syntaxRefusal(file, error)]);
  }
  const decoder = new TextDecoder();
  return (result.stmts ?? []).map((raw) => {
    const byteOffset = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? byteOffset + raw.stmt_len : file.source.length;
    const node = (raw.stmt ?? {}) as Record<string, unknown>;
    const bytes = file.source.subarray(byteOffset, end);
    const text = decoder.decode(bytes);
    return {
      kind: Object.keys(node)[0] ?? "Unknown",
      node,
      text,
      ...maskPasswordLiterals({ node, text, bytes, byteOffset }, scan),
      byteOffset,
      line: lineAtByte(file.source, byteOffset),
    };
  });
}

function sizeRefusal(file: SqlSource): Refusal {
  const size = file.source.length;
  return {
    check: "size",
    file: file.fileName,
    message:
      `the file is ${describeSize(size)}, over the limit of ${describeSize(SQL_FILE_LIMIT_BYTES)} for one SQL migration file: ` +
      "the job parses a file in one piece, and a larger one would keep SIGTERM waiting and take too much memory",
    resolution: `split it into files of at most ${formatMebibytes(SQL_FILE_LIMIT_BYTES)} each, with consecutive versions; each part then applies in its own transaction`,
  };
}

function describeSize(bytes: number): string {
  return `${bytes.toLocaleString("en-US")} bytes (${formatMebibytes(bytes)})`;
}

function formatMebibytes(bytes: number): string {
  const mebibytes = bytes / (1024 * 1024);
  return `${Number.isInteger(mebibytes) ? mebibytes : mebibytes.toFixed(1)} MiB`;
}

/** The parser's own words, said once: it already begins most of them with "syntax error". */
function syntaxMessage(parserMessage: string): string {
  return /^syntax error/i.test(parserMessage) ? parserMessage : `syntax error: ${parserMessage}`;
}

function syntaxRefusal(file: SqlSource, error: unknown): Refusal {
  const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
  // libpg-query reports a 0-based character position.
  const position = details?.cursorPosition;
  const where = position === undefined ? undefined : lineColumnAtByte(file.source, byteOffsetOfCharacter(file.source, position + 1));
  return {
    check: "syntax",
    file: file.fileName,
    ...(where ? { line: where.line } : {}),
    message: `${syntaxMessage(maskQuotedLiteral((error as Error).message))} (${where ? `line ${where.line}, column ${where.column}, ` : ""}PostgreSQL 18 grammar)`,
    resolution: "fix the SQL; check it with psql against a scratch database",
  };
}

/**
 * Transaction control at the top level of a file that runs inside the job's own transaction would
 * commit part of a migration early or end the job's transaction: refuse it before anything runs.
 */
export function transactionControlRefusals(file: SqlSource, statements: readonly Statement[]): Refusal[] {
  return statements
    .filter((statement) => statement.kind === "TransactionStmt")
    .map((statement) => ({
      check: "transaction",
      file: file.fileName,
      line: statement.line,
      message: `transaction control statement "${firstLine(statement.safeText)}" in a file that runs inside a transaction`,
      resolution: "remove it (the job wraps each file in one transaction), or add -- migrate:no-transaction at the top of the file",
    }));
}

/**
 * A file that runs without the job's transaction may manage its own, but must not end with one
 * still open (BEGIN without COMMIT, or COMMIT AND CHAIN last): the job would record the file as
 * applied inside that transaction, and the disconnect at the end of the run would roll back both.
 * PREPARE TRANSACTION is refused too: it leaves a prepared transaction holding its locks after
 * the job has gone. Found from the parse tree before anything runs.
 */
export function openTransactionRefusals(file: SqlSource, statements: readonly Statement[]): Refusal[] {
  let openedBy: Statement | undefined;
  const refusals: Refusal[] = [];
  for (const statement of statements) {
    const control = transactionControl(statement);
    if (control === undefined) continue;
    if (control.kind === "TRANS_STMT_PREPARE") refusals.push(prepareRefusal(file, statement));
    if (OPENS.has(control.kind) || (ENDS.has(control.kind) && control.chain === true)) openedBy = statement;
    else if (ENDS.has(control.kind) || control.kind === "TRANS_STMT_PREPARE") openedBy = undefined;
  }
  if (openedBy) {
    refusals.push({
      check: "transaction",
      file: file.fileName,
      line: openedBy.line,
      message: `"${firstLine(openedBy.safeText)}" leaves a transaction open at the end of the file, so nothing after it would ever commit`,
      resolution: "end the file's own transaction with COMMIT (without AND CHAIN), or remove -- migrate:no-transaction and its BEGIN/COMMIT so the job runs the file in one transaction",
    });
  }
  return refusals;
}

const OPENS = new Set(["TRANS_STMT_BEGIN", "TRANS_STMT_START"]);
const ENDS = new Set(["TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"]);

function transactionControl(statement: Statement): { readonly kind: string; readonly chain?: boolean } | undefined {
  return statement.kind === "TransactionStmt" ? (statement.node.TransactionStmt as { kind: string; chain?: boolean }) : undefined;
}

function prepareRefusal(file: SqlSource, statement: Statement): Refusal {
  return {
    check: "transaction",
    file: file.fileName,
    line: statement.line,
    message: `"${firstLine(statement.safeText)}" would leave a prepared transaction, holding its locks, after the job has ended`,
    resolution: "commit the work with COMMIT instead; two-phase commit has no place in a migration",
  };
}

/**
 * Where a server error points inside the file: PostgreSQL's `position` is a 1-based character
 * offset into the statement; without one, the statement's own start.
 */
export function locateInFile(file: SqlSource, statement: Statement, position: number | undefined): SourceLocation {
  const offset = position && position > 0 ? byteOffsetOfCharacter(file.source, position, statement.byteOffset) : statement.byteOffset;
  const { line, column } = lineColumnAtByte(file.source, offset);
  return { file: file.fileName, line, column, statement: firstLine(statement.safeText), secrets: statement.secrets };
}

export function firstLine(text: string): string {
  const line = text.split("\n", 1)[0]!.trim();
  return text.includes("\n") ? `${line} …` : line;
}

/** About 30 ms of scanning each: the scanner is a synchronous call, and slower than the parser. */
const SCAN_PIECE_BYTES = 64 * 1024;
const COMMENT_TOKENS: ReadonlySet<string> = new Set(["SQL_COMMENT", "C_COMMENT"]);

/**
 * Scans, with PostgreSQL's own scanner, only the pieces of the file whose text mentions what is
 * looked for. A piece begins where a statement begins (or at the start of the file), where the
 * scanner is between tokens, never inside a string or a comment, so pieces scan as the whole would.
 */
async function scanComments(file: SqlSource, statements: readonly Statement[], mentioning: string, scanSync: (sql: string) => ScanResult, checkpoint: Checkpoint): Promise<SqlComment[]> {
  const comments: SqlComment[] = [];
  for (const { start, end } of scanPieces(file.source.length, statements)) {
    await checkpoint();
    const text = pieceDecoder.decode(file.source.subarray(start, end));
    if (!text.includes(mentioning)) continue;
    for (const token of scanSync(text).tokens) {
      if (COMMENT_TOKENS.has(token.tokenName) && token.text.includes(mentioning)) comments.push({ text: token.text, byteOffset: start + token.start });
    }
  }
  return comments;
}

const pieceDecoder = new TextDecoder();

interface Piece {
  readonly start: number;
  readonly end: number;
}

/** Consecutive pieces covering the whole file, each of whole statements and at least SCAN_PIECE_BYTES where it can be. */
function scanPieces(length: number, statements: readonly Statement[]): Piece[] {
  const pieces: Piece[] = [];
  let start = 0;
  for (const statement of statements) {
    if (statement.byteOffset - start < SCAN_PIECE_BYTES) continue;
    pieces.push({ start, end: statement.byteOffset });
    start = statement.byteOffset;
  }
  pieces.push({ start, end: length });
  return pieces;
}
