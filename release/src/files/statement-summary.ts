/**
 * One line per statement for `plan`: what it does and to which object, e.g.
 * "CREATE INDEX users_active_org_id_idx ON platform.users". It is read from libpg-query's parse
 * tree rather than the text, so comments, quoting, letter case and line breaks never change it.
 * Statements without a describer here fall back to their first line of text, password literals masked.
 */
import type {
  AlterTableCmd,
  ConstrType,
  FunctionParameter,
  GrantStmt,
  Node,
  ObjectType,
  ObjectWithArgs,
  RangeVar,
  RenameStmt,
  RoleSpec,
  TypeName,
} from "libpg-query";
import { firstLine, type Statement } from "./sql-statements.ts";

/** Long enough for a typical first line, short enough to keep `plan` one statement per line. */
const FALLBACK_MAX_LENGTH = 100;

export function summarizeStatement(statement: Statement): string {
  // `node` is the parser's own node, typed loosely by sql-statements.ts; this is its real type.
  return describeNode(statement.node as Node) ?? truncate(firstLine(statement.safeText));
}

type KeysOf<N> = N extends unknown ? keyof N : never;
type NodeKind = KeysOf<Node>;
type BodyOf<K extends NodeKind> = Extract<Node, Record<K, unknown>>[K];
/** Returns undefined when the node lacks what a summary needs: the caller falls back to the text. */
type Describer<K extends NodeKind> = (body: BodyOf<K>) => string | undefined;

const DESCRIBERS: { readonly [K in NodeKind]?: Describer<K> } = {
  CreateSchemaStmt: (s) => s.schemaname && `CREATE SCHEMA ${quoteIdentifier(s.schemaname)}`,
  CreateStmt: (s) => `CREATE TABLE ${relationName(s.relation)}`,
  CreateTableAsStmt: (s) =>
    s.objtype === "OBJECT_MATVIEW" ? `CREATE MATERIALIZED VIEW ${relationName(s.into?.rel)}` : `CREATE TABLE ${relationName(s.into?.rel)} AS`,
  ViewStmt: (s) => `CREATE ${optional("OR REPLACE", s.replace)}VIEW ${relationName(s.view)}`,
  AlterTableStmt: (s) => `ALTER ${objectWord(s.objtype ?? "OBJECT_TABLE")} ${relationName(s.relation)} ${commaList(s.cmds, alterTableAction)}`,
  IndexStmt: (s) => {
    const name = optional(quoteIdentifier(s.idxname), s.idxname);
    return `CREATE ${optional("UNIQUE", s.unique)}INDEX ${optional("CONCURRENTLY", s.concurrent)}${name}ON ${relationName(s.relation)}`;
  },
  CreateFunctionStmt: (s) =>
    `CREATE ${optional("OR REPLACE", s.replace)}${s.is_procedure ? "PROCEDURE" : "FUNCTION"} ${qualifiedName(s.funcname)}(${signature(s.parameters)})`,
  AlterFunctionStmt: (s) => s.func && `ALTER ${objectWord(s.objtype ?? "OBJECT_FUNCTION")} ${functionName(s.func)}`,
  CreateTrigStmt: (s) => `CREATE ${optional("OR REPLACE", s.replace)}TRIGGER ${quoteIdentifier(s.trigname)} ON ${relationName(s.relation)}`,
  CreatePolicyStmt: (s) => `CREATE POLICY ${quoteIdentifier(s.policy_name)} ON ${relationName(s.table)}`,
  AlterPolicyStmt: (s) => `ALTER POLICY ${quoteIdentifier(s.policy_name)} ON ${relationName(s.table)}`,
  InsertStmt: (s) => `INSERT INTO ${relationName(s.relation)}`,
  UpdateStmt: (s) => `UPDATE ${relationName(s.relation)}`,
  DeleteStmt: (s) => `DELETE FROM ${relationName(s.relation)}`,
  MergeStmt: (s) => `MERGE INTO ${relationName(s.relation)}`,
  TruncateStmt: (s) => `TRUNCATE ${commaList(s.relations, (node) => objectName("OBJECT_TABLE", node))}`,
  DoStmt: () => "DO block",
  DropStmt: (s) => {
    const type = s.removeType ?? "OBJECT_TABLE";
    return `DROP ${objectWord(type)} ${optional("CONCURRENTLY", s.concurrent)}${commaList(s.objects, (node) => objectName(type, node))}`;
  },
  CommentStmt: (s) => s.objtype && s.object && `COMMENT ON ${objectWord(s.objtype)} ${objectName(s.objtype, s.object)}`,
  GrantStmt: grantSummary,
  CreateEnumStmt: (s) => `CREATE TYPE ${qualifiedName(s.typeName)} AS ENUM`,
  AlterEnumStmt: (s) =>
    s.oldVal ? `ALTER TYPE ${qualifiedName(s.typeName)} RENAME VALUE '${s.oldVal}'` : `ALTER TYPE ${qualifiedName(s.typeName)} ADD VALUE '${s.newVal ?? ""}'`,
  CompositeTypeStmt: (s) => `CREATE TYPE ${relationName(s.typevar)}`,
  CreateDomainStmt: (s) => `CREATE DOMAIN ${qualifiedName(s.domainname)}`,
  CreateSeqStmt: (s) => `CREATE SEQUENCE ${relationName(s.sequence)}`,
  AlterSeqStmt: (s) => `ALTER SEQUENCE ${relationName(s.sequence)}`,
  CreateExtensionStmt: (s) => s.extname && `CREATE EXTENSION ${quoteIdentifier(s.extname)}`,
  RefreshMatViewStmt: (s) => `REFRESH MATERIALIZED VIEW ${optional("CONCURRENTLY", s.concurrent)}${relationName(s.relation)}`,
  RenameStmt: renameSummary,
  CreateRoleStmt: (s) => `CREATE ${words((s.stmt_type ?? "ROLESTMT_ROLE").replace(/^ROLESTMT_/, ""))} ${quoteIdentifier(s.role)}`,
  AlterRoleStmt: (s) => `ALTER ROLE ${roleName(s.role)}`,
  CreateUserMappingStmt: (s) => `CREATE USER MAPPING FOR ${roleName(s.user)} SERVER ${quoteIdentifier(s.servername)}`,
  AlterUserMappingStmt: (s) => `ALTER USER MAPPING FOR ${roleName(s.user)} SERVER ${quoteIdentifier(s.servername)}`,
  TransactionStmt: (s) => s.kind && `${words(s.kind.replace(/^TRANS_STMT_/, ""))}${s.savepoint_name ? ` ${quoteIdentifier(s.savepoint_name)}` : ""}`,
};

function grantSummary(s: GrantStmt): string {
  const type = s.objtype ?? "OBJECT_TABLE";
  const inSchema = s.targtype === "ACL_TARGET_ALL_IN_SCHEMA";
  const objects = commaList(s.objects, (node) => objectName(inSchema ? "OBJECT_SCHEMA" : type, node));
  const target = inSchema ? `ALL ${objectWord(type)}S IN SCHEMA ${objects}` : `${objectWord(type)} ${objects}`;
  const privileges = commaList(s.privileges, (node) => ("AccessPriv" in node ? (node.AccessPriv.priv_name ?? "").toUpperCase() : "…")) || "ALL";
  const grantees = commaList(s.grantees, (node) => ("RoleSpec" in node ? roleName(node.RoleSpec) : "…"));
  return s.is_grant ? `GRANT ${privileges} ON ${target} TO ${grantees}` : `REVOKE ${privileges} ON ${target} FROM ${grantees}`;
}

/** Renamed as `ALTER POLICY name ON table RENAME TO …`; columns and constraints go through their table. */
const RENAMED_ON_THEIR_TABLE: ReadonlySet<ObjectType> = new Set(["OBJECT_POLICY", "OBJECT_TRIGGER", "OBJECT_RULE"]);

function renameSummary(s: RenameStmt): string | undefined {
  const type = s.renameType ?? "OBJECT_TABLE";
  const newName = quoteIdentifier(s.newname);
  if (s.relation && s.subname && RENAMED_ON_THEIR_TABLE.has(type)) {
    return `ALTER ${objectWord(type)} ${quoteIdentifier(s.subname)} ON ${relationName(s.relation)} RENAME TO ${newName}`;
  }
  if (s.relation && s.subname) {
    const owner = `${objectWord(renamedColumnOwner(s.relationType))} ${relationName(s.relation)}`;
    return `ALTER ${owner} RENAME ${objectWord(type)} ${quoteIdentifier(s.subname)} TO ${newName}`;
  }
  if (s.relation) return `ALTER ${objectWord(type)} ${relationName(s.relation)} RENAME TO ${newName}`;
  return s.object && `ALTER ${objectWord(type)} ${objectName(type, s.object)} RENAME TO ${newName}`;
}

/**
 * What kind of relation holds a renamed column or constraint. The parser sets `relationType` only
 * for some forms and leaves it at its zero value, OBJECT_ACCESS_METHOD, for the rest (tables).
 */
function renamedColumnOwner(relationType: ObjectType | undefined): ObjectType {
  return relationType === undefined || relationType === "OBJECT_ACCESS_METHOD" ? "OBJECT_TABLE" : relationType;
}

function describeNode(node: Node): string | undefined {
  const kind = Object.keys(node)[0] as NodeKind;
  const describe = DESCRIBERS[kind] as ((body: unknown) => string | undefined) | undefined;
  return describe?.((node as Record<NodeKind, unknown>)[kind]) || undefined;
}

const ALTER_TABLE_ACTIONS: Partial<Record<NonNullable<AlterTableCmd["subtype"]>, (cmd: AlterTableCmd) => string>> = {
  AT_AddColumn: (cmd) => `ADD COLUMN ${quoteIdentifier(cmd.def && "ColumnDef" in cmd.def ? cmd.def.ColumnDef.colname : undefined)}`,
  AT_DropColumn: (cmd) => `DROP COLUMN ${quoteIdentifier(cmd.name)}`,
  AT_AddConstraint: (cmd) => {
    const constraint = cmd.def && "Constraint" in cmd.def ? cmd.def.Constraint : undefined;
    if (constraint?.conname) return `ADD CONSTRAINT ${quoteIdentifier(constraint.conname)}`;
    return `ADD ${CONSTRAINT_WORDS[constraint?.contype ?? "CONSTR_CHECK"] ?? "CONSTRAINT"}`;
  },
  AT_ValidateConstraint: (cmd) => `VALIDATE CONSTRAINT ${quoteIdentifier(cmd.name)}`,
  AT_DropConstraint: (cmd) => `DROP CONSTRAINT ${quoteIdentifier(cmd.name)}`,
  AT_AlterColumnType: (cmd) => `${alterColumn(cmd)} TYPE ${cmd.def && "ColumnDef" in cmd.def ? typeName(cmd.def.ColumnDef.typeName) : "…"}`,
  AT_SetNotNull: (cmd) => `${alterColumn(cmd)} SET NOT NULL`,
  AT_DropNotNull: (cmd) => `${alterColumn(cmd)} DROP NOT NULL`,
  AT_ColumnDefault: (cmd) => `${alterColumn(cmd)} ${cmd.def ? "SET" : "DROP"} DEFAULT`,
  AT_EnableRowSecurity: () => "ENABLE ROW LEVEL SECURITY",
  AT_DisableRowSecurity: () => "DISABLE ROW LEVEL SECURITY",
  AT_ForceRowSecurity: () => "FORCE ROW LEVEL SECURITY",
  AT_NoForceRowSecurity: () => "NO FORCE ROW LEVEL SECURITY",
  AT_ChangeOwner: (cmd) => `OWNER TO ${roleName(cmd.newowner)}`,
  AT_EnableTrig: (cmd) => `ENABLE TRIGGER ${quoteIdentifier(cmd.name)}`,
  AT_DisableTrig: (cmd) => `DISABLE TRIGGER ${quoteIdentifier(cmd.name)}`,
  AT_SetRelOptions: () => "SET (…)",
  AT_ResetRelOptions: () => "RESET (…)",
};

function alterColumn(cmd: AlterTableCmd): string {
  return `ALTER COLUMN ${quoteIdentifier(cmd.name)}`;
}

function alterTableAction(node: Node): string {
  if (!("AlterTableCmd" in node)) return "…";
  const cmd = node.AlterTableCmd;
  const describe = cmd.subtype && ALTER_TABLE_ACTIONS[cmd.subtype];
  if (describe) return describe(cmd);
  // Rare actions read well enough from the parser's own name: AT_ReplicaIdentity -> REPLICA IDENTITY.
  const action = words((cmd.subtype ?? "").replace(/^AT_/, "").replace(/([a-z])([A-Z])/g, "$1_$2"));
  return cmd.name ? `${action} ${quoteIdentifier(cmd.name)}` : action;
}

const CONSTRAINT_WORDS: Partial<Record<ConstrType, string>> = {
  CONSTR_PRIMARY: "PRIMARY KEY",
  CONSTR_UNIQUE: "UNIQUE",
  CONSTR_CHECK: "CHECK",
  CONSTR_FOREIGN: "FOREIGN KEY",
  CONSTR_EXCLUSION: "EXCLUDE",
  CONSTR_NOTNULL: "NOT NULL",
};

/** Where the SQL keyword differs from the parser's name for the object type. */
const OBJECT_WORDS: Partial<Record<ObjectType, string>> = {
  OBJECT_MATVIEW: "MATERIALIZED VIEW",
  OBJECT_FDW: "FOREIGN DATA WRAPPER",
  OBJECT_FOREIGN_SERVER: "SERVER",
  OBJECT_LARGEOBJECT: "LARGE OBJECT",
  OBJECT_STATISTIC_EXT: "STATISTICS",
  OBJECT_TABCONSTRAINT: "CONSTRAINT",
  OBJECT_DOMCONSTRAINT: "CONSTRAINT",
  OBJECT_TSCONFIGURATION: "TEXT SEARCH CONFIGURATION",
  OBJECT_TSDICTIONARY: "TEXT SEARCH DICTIONARY",
  OBJECT_TSPARSER: "TEXT SEARCH PARSER",
  OBJECT_TSTEMPLATE: "TEXT SEARCH TEMPLATE",
};

function objectWord(type: ObjectType): string {
  return OBJECT_WORDS[type] ?? words(type.replace(/^OBJECT_/, ""));
}

/** Object types whose name is written `name ON table`; the parser lists the table first. */
const OBJECTS_ON_TABLES: ReadonlySet<ObjectType> = new Set(["OBJECT_POLICY", "OBJECT_TRIGGER", "OBJECT_RULE", "OBJECT_TABCONSTRAINT"]);

/** An object reference as the parser gives it in DROP, COMMENT, GRANT and friends. */
function objectName(type: ObjectType, node: Node): string {
  if ("RangeVar" in node) return relationName(node.RangeVar);
  if ("String" in node) return quoteIdentifier(node.String.sval);
  if ("TypeName" in node) return typeName(node.TypeName);
  if ("ObjectWithArgs" in node) return functionName(node.ObjectWithArgs);
  if ("List" in node) {
    const parts = identifiers(node.List.items);
    if (!OBJECTS_ON_TABLES.has(type) || parts.length < 2) return parts.map(quoteIdentifier).join(".");
    return `${quoteIdentifier(parts.at(-1)!)} ON ${parts.slice(0, -1).map(quoteIdentifier).join(".")}`;
  }
  return "…";
}

function relationName(relation: RangeVar | undefined): string {
  return [relation?.schemaname, relation?.relname].filter((part): part is string => part !== undefined).map(quoteIdentifier).join(".");
}

function qualifiedName(names: Node[] | undefined): string {
  return identifiers(names).map(quoteIdentifier).join(".");
}

function functionName(func: ObjectWithArgs): string {
  const name = qualifiedName(func.objname);
  if (func.args_unspecified) return name;
  return `${name}(${commaList(func.objargs, (node) => ("TypeName" in node ? typeName(node.TypeName) : "…"))})`;
}

/** A function's identity arguments: OUT and TABLE parameters are not part of it. */
function signature(parameters: Node[] | undefined): string {
  return (parameters ?? [])
    .flatMap((node): FunctionParameter[] => ("FunctionParameter" in node ? [node.FunctionParameter] : []))
    .filter((parameter) => parameter.mode !== "FUNC_PARAM_OUT" && parameter.mode !== "FUNC_PARAM_TABLE")
    .map((parameter) => typeName(parameter.argType))
    .join(", ");
}

/** Built-in types are written without their pg_catalog schema, as people write them. */
function typeName(type: TypeName | undefined): string {
  const names = identifiers(type?.names);
  const unqualified = names[0] === "pg_catalog" ? names.slice(1) : names;
  return unqualified.map(quoteIdentifier).join(".") + "[]".repeat(type?.arrayBounds?.length ?? 0);
}

function roleName(role: RoleSpec | undefined): string {
  if (role?.roletype === "ROLESPEC_CSTRING") return quoteIdentifier(role.rolename);
  return (role?.roletype ?? "").replace(/^ROLESPEC_/, "");
}

function identifiers(nodes: Node[] | undefined): string[] {
  return (nodes ?? []).flatMap((node) => ("String" in node && node.String.sval !== undefined ? [node.String.sval] : []));
}

/** Quotes a name the way PostgreSQL needs it written (reserved words aside); "…" if the parser gave none. */
function quoteIdentifier(name: string | undefined): string {
  if (name === undefined) return "…";
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/** `word` and a space when `present`, so optional keywords need no spacing logic at each use. */
function optional(word: string, present: boolean | string | undefined): string {
  return present ? `${word} ` : "";
}

function commaList(nodes: Node[] | undefined, describe: (node: Node) => string): string {
  return (nodes ?? []).map(describe).join(", ");
}

function words(name: string): string {
  return name.replaceAll("_", " ").toUpperCase();
}

function truncate(text: string): string {
  return text.length <= FALLBACK_MAX_LENGTH ? text : `${text.slice(0, FALLBACK_MAX_LENGTH - 1)}…`;
}
