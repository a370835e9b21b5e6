/**
 * Conditions of the environment met by the job's own statements (its tables, its run history, its
 * reading of the state), never a migration's SQL: the database refusing the job's work, another
 * session's lock held too long, a server out of resources, a connection gone. They are mapped here,
 * once, to the exit code DESIGN's table gives them and a message naming the cause (the SQLSTATE and
 * what the job was doing) and the fix, so that "unexpected error" is left to the job's own bugs.
 *
 * - exit 4 (DatabaseRefusedError): the database does not allow the job to proceed, and no retry
 *   changes that: read-only (25006), a missing privilege (42501). The operator must change the
 *   database, the role or DATABASE_URL first.
 * - exit 3 (DatabaseUnavailableError): the database cannot serve the job right now, as when it
 *   cannot connect or the migration lock is taken: another session's lock on the job's tables
 *   (55P03, 40P01, 57014), resources (class 53), the session or the server gone (class 08, 57P01-04,
 *   3D000, a closed connection).
 */
import postgres, { type Sql } from "postgres";
import { DatabaseRefusedError, DatabaseUnavailableError, MigrateError } from "../shared/errors.ts";
import { errorCode } from "./database.ts";

/** The role, database and tables of a run: the fixes name them, ready to paste. */
export interface JobDatabase {
  readonly user: string;
  readonly database: string;
  readonly schema: string;
  /** The job's own tables, `schema.table`. */
  readonly tables: readonly string[];
}

/** What the job was doing when the condition met it. */
export interface FailureContext {
  /** "running resolve", "applying 002_x.sql". */
  readonly doing: string;
  /** What stays done despite the failure, appended to the cause ("; 003_y was rolled back before it and stays so"). */
  readonly afterwards?: string;
  /** Known once connected; without it the fixes say "the role in DATABASE_URL". */
  readonly where?: JobDatabase | undefined;
}

/** The names a session connected with (postgres.js's parsed options), and the job's tables. */
export function jobDatabase(sql: Sql, schema: string, tables: readonly string[]): JobDatabase {
  return { user: sql.options.user, database: sql.options.database, schema, tables };
}

/** The typed error for an environment condition, a lost connection included; undefined for anything else. */
export function environmentFailure(error: unknown, context: FailureContext): MigrateError | undefined {
  // The job's own errors already say what happened; wrapping one again would repeat it inside itself.
  if (error instanceof MigrateError) return undefined;
  return serverCondition(error, context) ?? connectionLost(error, context);
}

const READ_ONLY = "25006";
const INSUFFICIENT_PRIVILEGE = "42501";
/** lock_not_available (lock_timeout), deadlock_detected, query_canceled (statement_timeout, or another session's pg_cancel_backend). */
const LOCK_WAITS = new Set(["55P03", "40P01", "57014"]);
/** admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped, invalid_catalog_name: the session or its database is gone. */
const SERVER_GONE = new Set(["57P01", "57P02", "57P03", "57P04", "3D000"]);
/** postgres.js's and Node's codes for a connection that closed under a query. */
const CONNECTION_GONE = new Set(["CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/**
 * An error PostgreSQL returned for one of the job's statements, when it is a condition of the
 * environment that leaves no doubt the statement did nothing. A lost session is left out: while a
 * migration commits, whether it committed is unknown, and the caller says so.
 */
export function serverCondition(error: unknown, context: FailureContext): MigrateError | undefined {
  if (!(error instanceof postgres.PostgresError)) return undefined;
  const { code } = error;
  const cause = describeCause(error, context);
  const options = { cause: error };
  if (code === READ_ONLY) return new DatabaseRefusedError(readOnly(cause, context.where), code, options);
  if (code === INSUFFICIENT_PRIVILEGE) return new DatabaseRefusedError(missingPrivilege(error.message, cause, context.where), code, options);
  // A lock wait's message names no table: the statement that waited does.
  if (LOCK_WAITS.has(code)) return new DatabaseUnavailableError(lockWait(code, describeCause(error, context, statementOf(error)), context.where), code, options);
  if (code.startsWith("53")) return new DatabaseUnavailableError(outOfResources(code, cause), code, options);
  return undefined;
}

/** The session, or the server or database behind it, went away under one of the job's statements. */
function connectionLost(error: unknown, context: FailureContext): MigrateError | undefined {
  const code = errorCode(error);
  if (error instanceof postgres.PostgresError && (code.startsWith("08") || SERVER_GONE.has(code))) {
    return new DatabaseUnavailableError(serverGone(describeCause(error, context)), code, { cause: error });
  }
  if (!CONNECTION_GONE.has(code)) return undefined;
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseUnavailableError(
    `the connection to the database was lost while ${context.doing} (${code}: ${message})${context.afterwards ?? ""}. ` +
      "Check that the database service is up and reachable, see where the run stands with status, then run the command again",
    code,
    { cause: error },
  );
}

/** "SQLSTATE 25006 while recording the run in platform.schema_migrations_runs: cannot execute INSERT in a read-only transaction" */
function describeCause(error: postgres.PostgresError, { doing, afterwards }: FailureContext, statement = ""): string {
  return `SQLSTATE ${error.code} while ${doing}: ${error.message}${statement}${afterwards ?? ""}`;
}

/** Enough of the job's longest statements to show the table they read. */
const STATEMENT_SHOWN = 200;

/** The job's own statement that failed (postgres.js keeps it on the error), on one line and short. */
function statementOf(error: unknown): string {
  const query = (error as { query?: unknown }).query;
  if (typeof query !== "string" || query.trim() === "") return "";
  const line = query.replace(/\s+/g, " ").trim();
  return `; the statement: ${line.length > STATEMENT_SHOWN ? `${line.slice(0, STATEMENT_SHOWN - 1)}…` : line}`;
}

function readOnly(cause: string, where: JobDatabase | undefined): string {
  return (
    `the database is read-only (${cause}): default_transaction_read_only is on (for the database, the role or the server), ` +
    `or DATABASE_URL points at a standby. Fix: point DATABASE_URL at the primary, ` +
    `or turn the setting off with: alter database ${identifier(where?.database, "<database>")} set default_transaction_read_only = off`
  );
}

/** PostgreSQL names the object it denied: "permission denied for database x", "… for schema y", "… for table z". */
const DENIED_OBJECT = /permission denied for (database|schema|table|sequence) (.+)$/;

function missingPrivilege(serverMessage: string, cause: string, where: JobDatabase | undefined): string {
  const role = where ? `role "${where.user}"` : "the role in DATABASE_URL";
  const grantee = identifier(where?.user, "<role>");
  const schema = identifier(where?.schema, "<schema>");
  const [, kind, name] = DENIED_OBJECT.exec(serverMessage) ?? [];
  if (kind === "database") {
    return (
      `${role} lacks CREATE on database "${name}" (${cause}), which the job needs to create its schema ${schema}. ` +
      `Fix: grant it with: grant create on database ${identifier(name, "<database>")} to ${grantee}; ` +
      `or create schema ${schema} beforehand and grant the role usage and create on it: create schema ${schema}; grant usage, create on schema ${schema} to ${grantee}`
    );
  }
  if (kind === "schema") {
    return `${role} lacks a privilege on schema "${name}" (${cause}). Fix: grant usage, create on schema ${identifier(name, "<schema>")} to ${grantee}`;
  }
  const tables = where?.tables.join(", ") ?? "the job's tables";
  return (
    `${role} lacks a privilege on ${kind ? `${kind} "${name}"` : "an object the job uses"} (${cause}). The job reads and writes its own tables ${tables}. ` +
    `Fix: make ${grantee} their owner, or grant select, insert, update, delete on all tables in schema ${schema} to ${grantee}; grant usage on all sequences in schema ${schema} to ${grantee}`
  );
}

function lockWait(code: string, cause: string, where: JobDatabase | undefined): string {
  const what =
    code === "55P03"
      ? "another session held a lock the job needed for longer than its lock_timeout (MIGRATE_LOCK_TIMEOUT) allows"
      : code === "40P01"
        ? "one of the job's statements lost a deadlock with another session"
        : "one of the job's statements was cancelled: it ran past statement_timeout (MIGRATE_STATEMENT_TIMEOUT), usually waiting for another session's lock, or another session cancelled it";
  return `${what} (${cause}). The statement did nothing. Fix: find the session in ${holdersQuery(where)}; end its transaction or wait for it (an idle transaction is the usual cause), then run the command again`;
}

/** A query that lists who holds locks on the job's tables, or on anything when they are not known. */
function holdersQuery(where: JobDatabase | undefined): string {
  const relations = where ? ` and l.relation in (${where.tables.map((table) => `to_regclass('${table}')`).join(", ")})` : " and l.relation is not null";
  return (
    "pg_locks: select l.relation::regclass, l.mode, a.pid, a.application_name, a.state, a.xact_start " +
    `from pg_locks l join pg_stat_activity a on a.pid = l.pid where l.granted and a.pid <> pg_backend_pid()${relations}`
  );
}

const RESOURCE_FIXES: Record<string, string> = {
  "53100": "free disk space on the database server, or give it a larger volume",
  "53200": "give the database server more memory, or end the sessions using it",
  "53300": "end idle connections, or raise max_connections",
};

function outOfResources(code: string, cause: string): string {
  const fix = RESOURCE_FIXES[code] ?? "raise the limit the message names";
  return `the database server is out of resources (${cause}). Fix: ${fix}, then run the command again`;
}

function serverGone(cause: string): string {
  return `the database ended the job's session (${cause}). Fix: check that the database service is up and DATABASE_URL points at it, see where the run stands with status, then run the command again`;
}

/** A name as SQL needs it written: bare when it can be, double-quoted otherwise. */
function identifier(name: string | undefined, placeholder: string): string {
  if (name === undefined) return placeholder;
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}
