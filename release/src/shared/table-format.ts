/** Plain text for a person at a terminal: tables with aligned columns, and counted nouns. */

const COLUMN_GAP = "  ";

/** The header and rows as lines; the last column is not padded, so no line ends in spaces. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const lines = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...lines.map((row) => (row[column] ?? "").length)));
  return lines.map((row) =>
    header
      .map((_, column) => (column === header.length - 1 ? (row[column] ?? "") : (row[column] ?? "").padEnd(widths[column]!)))
      .join(COLUMN_GAP)
      .trimEnd(),
  );
}

/** "1 migration", "3 migrations". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
