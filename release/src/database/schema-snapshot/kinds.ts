/**
 * The kinds of object a snapshot holds, which section holds each, and which object each entry
 * belongs to: shared by reading (leaving excluded tables out with everything of theirs) and by
 * diffing (counting what came or went with its parent under the parent).
 */
import type { SchemaSnapshot, SnapshotEntry, SnapshotSection } from "./types.ts";

export type ObjectKind = "schema" | "extension" | "type" | "table" | "column" | "constraint" | "index" | "sequence" | "view" | "function" | "trigger" | "policy" | "grant";

export interface KindInfo {
  readonly kind: ObjectKind;
  readonly section: SnapshotSection;
  /** How a difference names the object: `index platform.users_email_idx`, `grant on table platform.plans to anon`. */
  readonly label: string;
  readonly plural: string;
}

/** Every kind, in the order differences are listed: containers before what they contain. */
export const KINDS: readonly KindInfo[] = [
  { kind: "schema", section: "schemas", label: "schema", plural: "schemas" },
  { kind: "extension", section: "extensions", label: "extension", plural: "extensions" },
  { kind: "type", section: "types", label: "type", plural: "types" },
  { kind: "table", section: "tables", label: "table", plural: "tables" },
  { kind: "column", section: "columns", label: "column", plural: "columns" },
  { kind: "constraint", section: "constraints", label: "constraint", plural: "constraints" },
  { kind: "index", section: "indexes", label: "index", plural: "indexes" },
  { kind: "sequence", section: "sequences", label: "sequence", plural: "sequences" },
  { kind: "view", section: "views", label: "view", plural: "views" },
  { kind: "function", section: "functions", label: "function", plural: "functions" },
  { kind: "trigger", section: "triggers", label: "trigger", plural: "triggers" },
  { kind: "policy", section: "policies", label: "policy", plural: "policies" },
  { kind: "grant", section: "grants", label: "grant on", plural: "grants" },
];

/**
 * The object an entry belongs to and goes away with: a column's table, a grant's object, an
 * identity sequence's column. Names are unique across the kinds that can be parents (relations,
 * columns, functions, types, schemas), so a name alone identifies the parent.
 */
function parentOf(kind: ObjectKind, entry: SnapshotEntry): string | undefined {
  switch (kind) {
    case "column":
    case "index":
    case "trigger":
    case "policy":
      return entry.table as string;
    case "constraint":
      return ((entry.table ?? entry.domain) as string | null) ?? undefined;
    case "sequence":
      return (entry.owned_by as string | null) ?? undefined;
    case "grant":
      return entry.object as string;
    default:
      return undefined;
  }
}

export function entriesOf(snapshot: SchemaSnapshot, info: KindInfo): readonly SnapshotEntry[] {
  return snapshot[info.section];
}

/** Every object's parent, over the whole snapshot. */
export function parentsIn(snapshot: SchemaSnapshot): Map<string, string> {
  const parents = new Map<string, string>();
  for (const info of KINDS) {
    for (const entry of entriesOf(snapshot, info)) {
      const parent = parentOf(info.kind, entry);
      if (parent !== undefined) parents.set(entry.name, parent);
    }
  }
  return parents;
}

/** True when `name` or one of its ancestors is in `names`. */
function withinAny(name: string, names: ReadonlySet<string>, parents: ReadonlyMap<string, string>): boolean {
  for (let current: string | undefined = name; current !== undefined; current = parents.get(current)) {
    if (names.has(current)) return true;
  }
  return false;
}

/** The snapshot with `transform` applied to the entries of every section. */
export function eachSection(snapshot: SchemaSnapshot, transform: <T extends SnapshotEntry>(entries: readonly T[]) => T[]): SchemaSnapshot {
  return {
    format: snapshot.format,
    schemas: transform(snapshot.schemas),
    extensions: transform(snapshot.extensions),
    types: transform(snapshot.types),
    tables: transform(snapshot.tables),
    columns: transform(snapshot.columns),
    constraints: transform(snapshot.constraints),
    indexes: transform(snapshot.indexes),
    sequences: transform(snapshot.sequences),
    views: transform(snapshot.views),
    functions: transform(snapshot.functions),
    triggers: transform(snapshot.triggers),
    policies: transform(snapshot.policies),
    grants: transform(snapshot.grants),
  };
}

/** The snapshot without the tables in `excluded` and everything that belongs to them. */
export function withoutExcluded(snapshot: SchemaSnapshot, excluded: ReadonlySet<string>): SchemaSnapshot {
  if (excluded.size === 0) return snapshot;
  const parents = parentsIn(snapshot);
  return eachSection(snapshot, (entries) => entries.filter((entry) => !withinAny(entry.name, excluded, parents)));
}

