/**
 * The one order and the one JSON text that make equal snapshots compare equal, wherever they were
 * read and however they were stored: shared by reading (sorting, hashing) and diffing.
 */

/** By code point, as the "C" collation sorts: the same order whatever the locale. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** JSON with object keys sorted at every level: jsonb reorders keys, and the hash must not notice. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, nested: unknown) =>
    nested !== null && typeof nested === "object" && !Array.isArray(nested)
      ? Object.fromEntries(Object.entries(nested).sort(([a], [b]) => compareNames(a, b)))
      : nested,
  );
}
