/**
 * The job's own lint rules, for what squawk does not check: read from libpg-query's parse tree
 * (PostgreSQL 18's own grammar), so comments, quoting, letter case and line breaks never matter.
 */
import type { DefElem, Node, ObjectType, RenameStmt } from "libpg-query";
import { transactionControlRefusals, type Statement } from "../files/sql-statements.ts";
import type { Checkpoint } from "../shared/cancellation.ts";
import type { MigrationFile } from "../files/migration-files.ts";

export interface JobFinding {
  readonly rule: string;
  /** Byte offset into the file where the finding points: the statement, or the clause at fault. */
  readonly byteOffset: number;
  readonly message: string;
}

type StatementCheck = (statement: Statement, file: MigrationFile) => JobFinding[];

/** Findings of every job rule, statement by statement, in file order. */
export async function jobRuleFindings(file: MigrationFile, statements: readonly Statement[], checkpoint: Checkpoint): Promise<JobFinding[]> {
  const findings: JobFinding[] = [];
  for (const statement of statements) {
    await checkpoint();
    for (const check of CHECKS) findings.push(...check(statement, file));
  }
  return findings;
}

/** The definition `up` refuses with, so `check` and a deploy never disagree about it. */
const transactionControlInTransaction: StatementCheck = (statement, file) => {
  if (!file.transactional) return [];
  return transactionControlRefusals(file, [statement]).map((refusal) => ({
    rule: "transaction-control-in-transaction",
    byteOffset: statement.byteOffset,
    message: refusal.message,
  }));
};

const securityDefinerSearchPath: StatementCheck = (statement) => {
  const routine = routineOptions(statement.node as Node);
  if (!routine) return [];
  const definer = defElems(routine.options).find((option) => option.defname === "security" && isEnabled(option));
  if (!definer || defElems(routine.options).some(setsFixedSearchPath)) return [];
  const already = routine.altered ? " (if an earlier migration gave it one, waive this with that reason)" : "";
  return [
    {
      rule: "security-definer-search-path",
      byteOffset: locationOr(definer.location, statement),
      message: `SECURITY DEFINER ${routine.kind} without SET search_path${already}: it runs with its owner's rights but looks names up through the caller's search_path`,
    },
  ];
};

interface RoutineOptions {
  readonly kind: "function" | "procedure";
  readonly options: Node[] | undefined;
  /** ALTER FUNCTION: the function may have had its search_path set when it was created. */
  readonly altered: boolean;
}

function routineOptions(node: Node): RoutineOptions | undefined {
  if ("CreateFunctionStmt" in node) {
    const create = node.CreateFunctionStmt;
    return { kind: create.is_procedure ? "procedure" : "function", options: create.options, altered: false };
  }
  if ("AlterFunctionStmt" in node) {
    const alter = node.AlterFunctionStmt;
    return { kind: alter.objtype === "OBJECT_PROCEDURE" ? "procedure" : "function", options: alter.actions, altered: true };
  }
  return undefined;
}

/** `SET search_path = …` with a value; `FROM CURRENT` would keep whatever path the migration ran with. */
function setsFixedSearchPath(option: DefElem): boolean {
  if (option.defname !== "set" || !option.arg || !("VariableSetStmt" in option.arg)) return false;
  const set = option.arg.VariableSetStmt;
  return set.name === "search_path" && set.kind === "VAR_SET_VALUE";
}

const concurrentlyInTransaction: StatementCheck = (statement, file) => {
  if (!file.transactional) return [];
  const what = concurrentOperation(statement.node as Node);
  if (!what) return [];
  return [
    {
      rule: "concurrently-in-transaction",
      byteOffset: statement.byteOffset,
      message: `${what} cannot run inside a transaction block, and the job runs this file in one`,
    },
  ];
};

/** The statements PostgreSQL refuses to run CONCURRENTLY inside a transaction block. */
function concurrentOperation(node: Node): string | undefined {
  if ("IndexStmt" in node && node.IndexStmt.concurrent) return "CREATE INDEX CONCURRENTLY";
  if ("DropStmt" in node && node.DropStmt.concurrent) return "DROP INDEX CONCURRENTLY";
  if ("ReindexStmt" in node && defElems(node.ReindexStmt.params).some((param) => param.defname === "concurrently" && isEnabled(param))) {
    return "REINDEX CONCURRENTLY";
  }
  if ("AlterTableStmt" in node) {
    const detaches = (node.AlterTableStmt.cmds ?? []).some(
      (cmd) => "AlterTableCmd" in cmd && cmd.AlterTableCmd.subtype === "AT_DetachPartition" && isConcurrentPartitionCmd(cmd.AlterTableCmd.def),
    );
    if (detaches) return "DETACH PARTITION … CONCURRENTLY";
  }
  return undefined;
}

function isConcurrentPartitionCmd(def: Node | undefined): boolean {
  return def !== undefined && "PartitionCmd" in def && def.PartitionCmd.concurrent === true;
}

/** Views squawk's renaming and drop rules do not look at (it checks tables and columns of tables). */
const VIEWS: ReadonlySet<ObjectType> = new Set(["OBJECT_VIEW", "OBJECT_MATVIEW"]);

const renamingView: StatementCheck = (statement) => {
  const node = statement.node as Node;
  if (!("RenameStmt" in node)) return [];
  const what = renamedViewPart(node.RenameStmt);
  if (!what) return [];
  return [{ rule: "renaming-view", byteOffset: statement.byteOffset, message: `renaming ${what} breaks the release still serving, which queries it by its old name` }];
};

function renamedViewPart(rename: RenameStmt): string | undefined {
  const view = `${rename.relation?.schemaname ? `${rename.relation.schemaname}.` : ""}${rename.relation?.relname ?? "…"}`;
  if (rename.renameType && VIEWS.has(rename.renameType)) return `view ${view}`;
  if (rename.renameType === "OBJECT_COLUMN" && rename.relationType && VIEWS.has(rename.relationType)) return `column ${rename.subname ?? "…"} of view ${view}`;
  return undefined;
}

const droppingView: StatementCheck = (statement) => {
  const node = statement.node as Node;
  if (!("DropStmt" in node) || !node.DropStmt.removeType || !VIEWS.has(node.DropStmt.removeType)) return [];
  return [{ rule: "dropping-view", byteOffset: statement.byteOffset, message: "dropping a view breaks the release still serving, which may query it" }];
};

/** Relations a running release queries by their qualified name. */
const MOVABLE_RELATIONS: ReadonlySet<ObjectType> = new Set(["OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE"]);

const movingToAnotherSchema: StatementCheck = (statement) => {
  const node = statement.node as Node;
  if (!("AlterObjectSchemaStmt" in node)) return [];
  const move = node.AlterObjectSchemaStmt;
  if (!move.objectType || !MOVABLE_RELATIONS.has(move.objectType)) return [];
  return [
    {
      rule: "moving-to-another-schema",
      byteOffset: statement.byteOffset,
      message: `moving ${move.relation?.relname ?? "a relation"} to schema ${move.newschema ?? "…"} breaks the release still serving, which looks for it in its old schema`,
    },
  ];
};

const CHECKS: readonly StatementCheck[] = [
  transactionControlInTransaction,
  securityDefinerSearchPath,
  concurrentlyInTransaction,
  renamingView,
  droppingView,
  movingToAnotherSchema,
];

function defElems(nodes: Node[] | undefined): DefElem[] {
  return (nodes ?? []).flatMap((node) => ("DefElem" in node ? [node.DefElem] : []));
}

/** An option given without a value is on; otherwise its value decides, as PostgreSQL's defGetBoolean does. */
function isEnabled(option: DefElem): boolean {
  const value = option.arg;
  if (!value) return true;
  if ("Boolean" in value) return value.Boolean.boolval === true;
  if ("Integer" in value) return value.Integer.ival !== 0 && value.Integer.ival !== undefined;
  if ("String" in value) return !["false", "off", "0", "no"].includes((value.String.sval ?? "").toLowerCase());
  return true;
}

/** Parse-tree locations are byte offsets into the file's text; -1 (or none) means the parser kept none. */
function locationOr(location: number | undefined, statement: Statement): number {
  return location !== undefined && location >= 0 ? location : statement.byteOffset;
}
