/**
 * Statements with their values written into the text as SQL literals instead of sent as
 * parameters. postgres.js sends a statement with parameters in two round trips (it asks the server
 * for the parameter types first) and sends nothing after it until both are done, so the job's own
 * small statements would each cost two round trips and could never share one. Written as
 * literals, the statements a run sends together travel together.
 *
 * Strings become escape-string literals (E'...'), whose meaning does not depend on
 * standard_conforming_strings: every backslash and quote is doubled, so nothing in the value can
 * end the literal. The session's client_encoding is UTF-8 (postgres.js sets it at startup, and a
 * migration's SET is undone before the job writes), where no byte of a multi-byte character is a
 * quote or a backslash. Fragments (identifiers from sql(name), nested sql`...`) pass through.
 */
import type { ISql, PendingQuery, Row } from "postgres";

export type LiteralValue = string | number | bigint | boolean | null | undefined;

/** `value` as SQL literal text. Throws on what PostgreSQL could not store: a NUL character, a number that is not finite. */
export function sqlLiteral(value: LiteralValue): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "bigint") return value < 0n ? `(${value})` : String(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} into SQL: not a finite number`);
    return value < 0 ? `(${value})` : String(value);
  }
  if (value.includes("\u0000")) throw new TypeError("cannot write a NUL character into SQL text: PostgreSQL text cannot hold one");
  return `E'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** Like `sql` as a template tag, with every interpolated plain value written as a literal. */
export function inlined(sql: ISql<{}>) {
  return <T extends readonly object[] = Row[]>(strings: TemplateStringsArray, ...values: readonly unknown[]): PendingQuery<T> =>
    sql<T>(strings, ...values.map((value) => (isPlain(value) ? sql.unsafe(sqlLiteral(value)) : value)) as never[]);
}

function isPlain(value: unknown): value is LiteralValue {
  return value === null || value === undefined || (typeof value !== "object" && typeof value !== "function");
}
