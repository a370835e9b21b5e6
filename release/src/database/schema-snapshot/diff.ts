/**
 * How two snapshots differ, in words a person reads in a deploy log: what was added, removed or
 * changed, each object that came or went with its parent counted under the parent.
 */
import { canonicalJson, compareNames } from "./canonical-form.ts";
import { entriesOf, KINDS, parentsIn, type KindInfo, type ObjectKind } from "./kinds.ts";
import type { ColumnEntry, ConstraintEntry, FunctionEntry, IndexEntry, PolicyEntry, SchemaSnapshot, SnapshotEntry, SnapshotValue } from "./types.ts";

export type Change = "added" | "removed" | "changed";

/** One way `after` differs from `before`. */
export interface SnapshotDifference {
  readonly kind: ObjectKind;
  /** The object's name as in the snapshot: `platform.users.active_org_id`, `platform.f(uuid, text)`. */
  readonly object: string;
  readonly change: Change;
  /**
   * For added and removed: a summary (`uuid, nullable`), with the objects that came or went with
   * it (`3 columns, 1 index`), which are not listed on their own. For changed: each attribute
   * that changed, `default: now() → none`, separated by `; `.
   */
  readonly detail?: string;
}

/**
 * What changed from `before` to `after`, in kind order (schemas first, grants last), then by
 * name. Works on snapshots read back from JSON.
 */
export function diffSnapshots(before: SchemaSnapshot, after: SchemaSnapshot): SnapshotDifference[] {
  const found = KINDS.flatMap((info) => compareKind(info, entriesOf(before, info), entriesOf(after, info)));
  const added = new Set(found.filter((f) => f.change === "added").map((f) => f.entry.name));
  const removed = new Set(found.filter((f) => f.change === "removed").map((f) => f.entry.name));
  const parents = new Map([...parentsIn(before), ...parentsIn(after)]);
  const coming = (f: Found) => (f.change === "added" ? added : f.change === "removed" ? removed : undefined);

  // An object that came or went with its parent is counted under the parent, not listed itself.
  const carried = new Map<string, Found[]>();
  const listed: Found[] = [];
  for (const f of found) {
    const together = coming(f);
    const carrier = together ? outermostWithin(f.entry.name, together, parents) : undefined;
    if (carrier === undefined) listed.push(f);
    else carried.set(carrier, [...(carried.get(carrier) ?? []), f]);
  }
  return listed.map((f) => toDifference(f, carried.get(f.entry.name) ?? []));
}

const KIND_LABELS = new Map(KINDS.map((info) => [info.kind, info.label]));

/** "column platform.users.active_org_id added (uuid, nullable)" */
export function describeDifference(difference: SnapshotDifference): string {
  const label = KIND_LABELS.get(difference.kind) ?? difference.kind;
  const subject = `${label} ${difference.object} ${difference.change}`;
  if (difference.detail === undefined) return subject;
  return difference.change === "changed" ? `${subject}: ${difference.detail}` : `${subject} (${difference.detail})`;
}

interface Found {
  readonly info: KindInfo;
  readonly change: Change;
  /** The object as it is after the change (before it, when removed). */
  readonly entry: SnapshotEntry;
  readonly previous?: SnapshotEntry;
}

function compareKind(info: KindInfo, before: readonly SnapshotEntry[], after: readonly SnapshotEntry[]): Found[] {
  const beforeByName = new Map(before.map((entry) => [entry.name, entry]));
  const afterByName = new Map(after.map((entry) => [entry.name, entry]));
  const found: Found[] = [];
  for (const name of [...new Set([...beforeByName.keys(), ...afterByName.keys()])].sort(compareNames)) {
    const old = beforeByName.get(name);
    const current = afterByName.get(name);
    if (!old) found.push({ info, change: "added", entry: current! });
    else if (!current) found.push({ info, change: "removed", entry: old });
    else if (canonicalJson(old) !== canonicalJson(current)) found.push({ info, change: "changed", entry: current, previous: old });
  }
  return found;
}

/** The outermost proper ancestor of `name` that is in `names` (an added table for its added column). */
function outermostWithin(name: string, names: ReadonlySet<string>, parents: ReadonlyMap<string, string>): string | undefined {
  let outermost: string | undefined;
  for (let current = parents.get(name); current !== undefined; current = parents.get(current)) {
    if (names.has(current)) outermost = current;
  }
  return outermost;
}

function toDifference(found: Found, carried: readonly Found[]): SnapshotDifference {
  const { info, change, entry, previous } = found;
  const detail = previous ? changedAttributes(previous, entry) : [summarize(info.kind, entry), countCarried(carried)].filter((part) => part !== "").join(", ");
  return { kind: info.kind, object: entry.name, change, ...(detail === "" ? {} : { detail }) };
}

function changedAttributes(before: SnapshotEntry, after: SnapshotEntry): string {
  const attributes = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) => key !== "name").sort(compareNames);
  return attributes
    .filter((key) => canonicalJson(before[key] ?? null) !== canonicalJson(after[key] ?? null))
    .map((key) => `${key.replaceAll("_", " ")}: ${renderValue(key, before[key])} → ${renderValue(key, after[key])}`)
    .join("; ");
}

function renderValue(key: string, value: SnapshotValue | undefined): string {
  if (value === null || value === undefined) return "none";
  if (Array.isArray(value)) return `[${value.join(", ")}]`;
  // A whole sha256 is noise in a sentence; its first 12 digits tell two bodies apart.
  if (key.endsWith("sha256") && typeof value === "string") return value.slice(0, 12);
  return String(value);
}

function countCarried(carried: readonly Found[]): string {
  return KINDS.map((info) => carried.filter((f) => f.info === info).length)
    .map((count, index) => (count > 0 ? `${count} ${count === 1 ? KINDS[index]!.kind : KINDS[index]!.plural}` : ""))
    .filter((part) => part !== "")
    .join(", ");
}

/** The few words that say what an added or removed object is. */
function summarize(kind: ObjectKind, entry: SnapshotEntry): string {
  switch (kind) {
    case "extension":
      return `version ${entry.version as string} in schema ${entry.schema as string}`;
    case "type":
      return `${entry.kind as string} ${entry.definition as string}`;
    case "table":
    case "view":
      return entry.kind === kind ? "" : (entry.kind as string);
    case "column":
      return describeColumn(entry as ColumnEntry);
    case "constraint":
    case "index":
      return describeDefinition(entry as ConstraintEntry | IndexEntry);
    case "sequence":
      return [entry.type as string, entry.owned_by ? `owned by ${entry.owned_by as string}` : ""].filter((part) => part !== "").join(", ");
    case "function":
      return describeFunction(entry as FunctionEntry);
    case "trigger":
      return entry.definition as string;
    case "policy":
      return describePolicy(entry as PolicyEntry);
    case "grant":
      return (entry.privileges as readonly string[]).join(", ");
    case "schema":
      return "";
  }
}

function describeColumn(column: ColumnEntry): string {
  return [
    column.type,
    column.nullable ? "nullable" : "not null",
    column.default !== null ? `default ${column.default}` : "",
    column.identity !== null ? `generated ${column.identity} as identity` : "",
    column.generated !== null ? `generated always as ${column.generated}` : "",
    column.collation !== null ? `collate ${column.collation}` : "",
  ]
    .filter((part) => part !== "")
    .join(", ");
}

function describeDefinition(entry: ConstraintEntry | IndexEntry): string {
  const invalid = entry.validated === false ? ", not validated" : entry.valid === false ? ", invalid" : "";
  return `${entry.definition}${invalid}`;
}

function describeFunction(fn: FunctionEntry): string {
  return [`${fn.kind} returning ${fn.result ?? "nothing"}`, `language ${fn.language}`, fn.volatility, fn.security_definer ? "security definer" : ""]
    .filter((part) => part !== "")
    .join(", ");
}

function describePolicy(policy: PolicyEntry): string {
  const using = policy.using !== null ? ` using ${policy.using}` : "";
  const check = policy.with_check !== null ? ` with check ${policy.with_check}` : "";
  return `${policy.mode} for ${policy.command} to ${policy.roles.join(", ")}${using}${check}`;
}

