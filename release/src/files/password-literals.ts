/**
 * Finds the password literals of a statement in its parse tree, so that the job can print and
 * store the statement without them. PostgreSQL's parser turns the PASSWORD of CREATE/ALTER
 * ROLE/USER/GROUP (ENCRYPTED PASSWORD, and so md5 and SCRAM verifiers, included) and the password
 * option of CREATE/ALTER USER MAPPING into a `password` option (a DefElem) holding the string. The
 * tree says where the option starts, not where its string is; the scanner's tokens after that
 * point do. A password inside a DO block, a function body or dynamic SQL is just part of a string
 * to the parser, and is not found.
 */
import type { ScanToken } from "libpg-query";

export const MASKED_LITERAL = "'********'";

/** The statement as the job may show it, and the secrets it held (for the redactor). */
export interface MaskedStatement {
  readonly safeText: string;
  readonly secrets: readonly string[];
}

/** The statement as written: its parse node, its text and UTF-8 bytes, and where those start in the file. */
export interface StatementSource {
  readonly node: unknown;
  readonly text: string;
  readonly bytes: Uint8Array;
  /** Byte offset of the statement in the file: the parse tree's locations count from the file's start. */
  readonly byteOffset: number;
}

export type Scanner = (sql: string) => { readonly tokens: readonly ScanToken[] };

interface PasswordOption {
  readonly location: number;
  readonly value: string;
}

/** Withheld whole when a literal the tree holds cannot be found in the text: never print what cannot be masked. */
const WITHHELD = "(statement not shown: it sets a password)";

/**
 * The option is always spelled `password` in the text (a keyword, or an option name, quoted or not),
 * so a statement without the word has none, and its tree, which may be huge (a long INSERT), is not walked.
 */
const MENTIONS_PASSWORD = /password/i;

export function maskPasswordLiterals(statement: StatementSource, scan: Scanner): MaskedStatement {
  const options = MENTIONS_PASSWORD.test(statement.text) ? passwordOptions(statement.node) : [];
  if (options.length === 0) return { safeText: statement.text, secrets: [] };
  // The scanner counts bytes of the text it is given, as the tree counts bytes of the file.
  const tokens = scan(statement.text).tokens;
  const literals = options.flatMap((option) => literalAfter(tokens, option.location - statement.byteOffset) ?? []);
  const secrets = [...options.map((option) => option.value), ...literals.map((literal) => literalBody(literal.text))];
  if (literals.length < options.length) return { safeText: WITHHELD, secrets };
  return { safeText: spliceMasks(statement.bytes, literals), secrets };
}

/** Every `password` option with a string value, anywhere in the tree. */
function passwordOptions(node: unknown): PasswordOption[] {
  if (Array.isArray(node)) return node.flatMap(passwordOptions);
  if (typeof node !== "object" || node === null) return [];
  const found = Object.values(node).flatMap(passwordOptions);
  const option = (node as { DefElem?: { defname?: string; arg?: { String?: { sval?: string } }; location?: number } }).DefElem;
  const value = option?.arg?.String?.sval;
  if (option?.defname?.toLowerCase() === "password" && value !== undefined && option.location !== undefined) {
    found.push({ location: option.location, value });
  }
  return found;
}

/** A string constant as the scanner gives it: '…', E'…', U&'…', N'…' or $tag$…$tag$ (adjacent '…' lines are one token). */
const STRING_CONSTANT = /^(?:(?:[EeNn]|[Uu]&)?'|\$)/;

/**
 * The option's string: the token after its PASSWORD keyword (or option name), the first at or after
 * the option's start. ENCRYPTED comes before the keyword; UESCAPE, after the string, is not part of it.
 */
function literalAfter(tokens: readonly ScanToken[], location: number): ScanToken | undefined {
  const keyword = tokens.findIndex((token) => token.start >= location && token.text.replaceAll('"', "").toLowerCase() === "password");
  const literal = keyword < 0 ? undefined : tokens[keyword + 1];
  return literal && STRING_CONSTANT.test(literal.text) ? literal : undefined;
}

/** What is between a literal's quotes, as the file spells it (doubled quotes, escapes): a server message may quote it so. */
function literalBody(literal: string): string {
  const dollarQuoted = /^(\$[^$]*\$)([\s\S]*)\1$/.exec(literal);
  if (dollarQuoted) return dollarQuoted[2]!;
  return /^(?:[EeNn]|[Uu]&)?'([\s\S]*)'$/.exec(literal)?.[1] ?? literal;
}

function spliceMasks(bytes: Uint8Array, literals: readonly ScanToken[]): string {
  const decoder = new TextDecoder();
  const pieces: string[] = [];
  let from = 0;
  for (const literal of [...literals].sort((a, b) => a.start - b.start)) {
    pieces.push(decoder.decode(bytes.subarray(from, literal.start)), MASKED_LITERAL);
    from = literal.end;
  }
  pieces.push(decoder.decode(bytes.subarray(from)));
  return pieces.join("");
}

/** A syntax error quoting a string constant (`at or near "'…'"`): it may be a password whose PASSWORD keyword was mistyped. */
const QUOTED_STRING_CONSTANT = /(at or near ")(?:(?:[EeNn]|[Uu]&)?'|\$)[\s\S]*(")$/;

/** A parser message without the string constant it quotes, if any; the line and column still say where. */
export function maskQuotedLiteral(message: string): string {
  return message.replace(QUOTED_STRING_CONSTANT, `$1${MASKED_LITERAL}$2`);
}
