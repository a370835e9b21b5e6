/**
 * Every failure the job reports on purpose is one of these classes, except SquawkFailedError;
 * anything else that reaches the end of a run is logged as an unexpected error, a bug. Each
 * carries the exit code from DESIGN.md, so the entry point never has to guess how a failure
 * should end the process.
 *
 * SquawkFailedError stays in lint/squawk.ts: its fix names the lint gate's relax switch, defined
 * in lint/lint-config.ts, which reports its own problems as a ConfigError from here, so importing
 * it would close a circle. Errors thrown only to leave a transaction without committing (in
 * commands/rehearse.ts and commands/verify-rollbacks.ts) are caught where they are thrown, never
 * reported, and stay private to those files.
 */
import { formatDuration } from "./duration.ts";
import { maskAll } from "./redact.ts";

export const ExitCode = {
  success: 0,
  migrationFailed: 1,
  usage: 2,
  databaseUnavailable: 3,
  refused: 4,
  /** Ended by SIGINT (Ctrl-C): 128 + 2. */
  interrupted: 130,
  /** Ended by SIGTERM: 128 + 15. */
  terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export abstract class MigrateError extends Error {
  abstract readonly exitCode: ExitCode;
  /** Machine-readable kind, logged as the `error` attribute. */
  abstract readonly kind: string;

  /** Extra attributes for structured logs (file, line, code, ...). */
  attributes(): Record<string, unknown> {
    return {};
  }
}

/** A bad flag, a missing or malformed variable, or a bad directive value. Exit 2. */
export class ConfigError extends MigrateError {
  readonly exitCode = ExitCode.usage;
  readonly kind = "config";
  constructor(readonly problems: readonly string[]) {
    super(formatProblems("configuration problem", problems));
  }
}

/** The refusal check for a directive whose value is malformed: exit 2 rather than 4. */
export const DIRECTIVE_VALUE_CHECK = "directive_value";

/** One reason to refuse a run before anything is applied. */
export interface Refusal {
  /** Which check refused: drift, missing, order, failed, file, size, directive, transaction, syntax. */
  readonly check: string;
  /** The file the refusal is about, relative to the migrations folder. */
  readonly file: string;
  readonly line?: number;
  readonly message: string;
  /** The one explicit command or action that resolves it. */
  readonly resolution: string;
}

/**
 * Validation refused the run (drift, order, bad files). Nothing was applied. Exit 4, or 2 when a
 * directive has a bad value, which is a usage error of that file.
 */
export class RefusedError extends MigrateError {
  readonly kind = "refused";
  constructor(readonly refusals: readonly Refusal[]) {
    super(
      formatProblems("refusing to run", refusalLines(refusals)),
    );
  }

  get exitCode(): ExitCode {
    return this.refusals.some((r) => r.check === DIRECTIVE_VALUE_CHECK) ? ExitCode.usage : ExitCode.refused;
  }

  override attributes(): Record<string, unknown> {
    return { checks: [...new Set(this.refusals.map((r) => r.check))], files: this.refusals.map((r) => r.file) };
  }
}

/** Could not connect, or the migration lock was not acquired in time. Exit 3. */
export class DatabaseUnavailableError extends MigrateError {
  readonly exitCode = ExitCode.databaseUnavailable;
  readonly kind = "database_unavailable";
  constructor(
    message: string,
    readonly code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  override attributes(): Record<string, unknown> {
    return this.code ? { code: this.code } : {};
  }
}

/**
 * The database does not allow the job its own work: it is read-only, or the role lacks a privilege
 * on the job's schema or tables. Something the operator must change before any run can pass, so
 * it ends like a refusal. Exit 4.
 */
export class DatabaseRefusedError extends MigrateError {
  readonly exitCode = ExitCode.refused;
  readonly kind = "database_refused";
  constructor(
    message: string,
    readonly code: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  override attributes(): Record<string, unknown> {
    return { code: this.code };
  }
}

/** Where inside a migration file a failure happened. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The first line of the failing statement, for the log, its password literals masked. */
  readonly statement: string;
  /** The failing statement's password literals, masked in the server's fields too (they may quote the statement). */
  readonly secrets?: readonly string[];
}

/** PostgreSQL's own description of an error (the fields of an ErrorResponse). */
export interface ServerError {
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly where?: string;
}

/** A migration's SQL failed. Its transaction (if any) was rolled back. Exit 1. */
export class MigrationFailedError extends MigrateError {
  readonly exitCode = ExitCode.migrationFailed;
  readonly kind: string = "migration_failed";
  /** What the server said, the failing statement's password literals masked. */
  readonly server: ServerError;
  constructor(
    readonly location: SourceLocation,
    server: ServerError,
    readonly outcome: string,
    options?: ErrorOptions,
  ) {
    const masked = maskServerError(server, location.secrets ?? []);
    super(formatMigrationFailure(location, masked, outcome), options);
    this.server = masked;
  }

  override attributes(): Record<string, unknown> {
    return {
      file: this.location.file,
      line: this.location.line,
      column: this.location.column,
      code: this.server.code,
      detail: this.server.detail,
      hint: this.server.hint,
    };
  }
}

/**
 * A TypeScript migration ended the job's transaction itself (COMMIT or ROLLBACK through its `sql`):
 * what it ran before that was committed on its own, so it cannot be rolled back. Exit 1.
 */
export class TransactionEscapedError extends MigrationFailedError {
  override readonly kind = "transaction_escaped";
}

/** One failed attempt at a migration that waited too long for a table lock, or deadlocked. */
export interface LockAttempt {
  readonly attempt: number;
  /** 55P03 lock_not_available (lock_timeout) or 40P01 deadlock_detected. */
  readonly code: string;
  /** Who held the locks it waited for, as seen while it waited. */
  readonly blockers: string;
}

/** A migration kept losing to other sessions' locks until its attempts ran out. Exit 1. */
export class LockContentionError extends MigrateError {
  readonly exitCode = ExitCode.migrationFailed;
  readonly kind = "lock_contention";
  constructor(
    readonly location: SourceLocation,
    readonly attempts: readonly LockAttempt[],
    options?: ErrorOptions,
  ) {
    super(
      [
        `${location.file}:${location.line}:${location.column}: gave up after ${attempts.length} attempts, each stopped by lock_timeout or a deadlock`,
        `  statement: ${location.statement}`,
        ...attempts.map((a) => `  attempt ${a.attempt}: SQLSTATE ${a.code}, ${a.blockers}`),
        `  every attempt was rolled back: nothing from ${location.file} was applied`,
        "  fix: end or wait out the sessions above (idle transactions are the usual cause), then deploy again; " +
          "or give this file more time with -- migrate:lock-timeout <duration>",
      ].join("\n"),
      options,
    );
  }

  override attributes(): Record<string, unknown> {
    return { file: this.location.file, line: this.location.line, code: this.attempts.at(-1)?.code, attempts: this.attempts.length };
  }
}

/** A migration failure in a JSON document: every field present, null when the server sent none. */
export function failureDocument({ location, server }: MigrationFailedError) {
  return {
    file: location.file,
    line: location.line,
    column: location.column,
    statement: location.statement,
    code: server.code,
    message: server.message,
    detail: server.detail ?? null,
    hint: server.hint ?? null,
    where: server.where ?? null,
  };
}

/** The run could not go on safely (the lock's connection was lost). Exit 1. */
export class RunAbortedError extends MigrateError {
  readonly exitCode = ExitCode.migrationFailed;
  readonly kind = "run_aborted";
}

/**
 * A connection the job set up was closed under it (terminated, timed out, a network reset). The job
 * never lets postgres.js reconnect behind its back, so the run stops at the next query. Exit 1.
 */
export class SessionLostError extends MigrateError {
  readonly exitCode = ExitCode.migrationFailed;
  readonly kind = "session_lost";
  constructor(
    readonly role: string,
    readonly pid: number,
    options?: ErrorOptions,
  ) {
    super(
      `the ${role} session (pid ${pid}) was closed by the server or the network; the job runs nothing on a session it did not set up, ` +
        "so it stopped here. A migration that had not committed was rolled back by the server; run the job again",
      options,
    );
  }

  override attributes(): Record<string, unknown> {
    return { code: "SESSION_LOST", session: this.role, pid: this.pid };
  }
}

/** Why a run was cancelled: what the job's AbortSignal is aborted with. */
export type CancelReason =
  | { readonly kind: "signal"; readonly signal: "SIGTERM" | "SIGINT" }
  | { readonly kind: "budget"; readonly limitMs: number };

/** 128 + the signal number, as shells report a process ended by it. */
const SIGNAL_EXIT_CODES = { SIGINT: ExitCode.interrupted, SIGTERM: ExitCode.terminated } as const;

/** The run was stopped on purpose: by SIGTERM or SIGINT (exit 143 or 130), or by its time budget (exit 1). */
export class CancelledError extends MigrateError {
  readonly kind = "cancelled";
  constructor(
    readonly reason: CancelReason,
    readonly interrupted: string,
  ) {
    super(`${describeReason(reason)}: stopped while ${interrupted}; nothing half-applied was kept (an open transaction was rolled back, and a migration lock held was released)`);
  }

  get exitCode(): ExitCode {
    return this.reason.kind === "signal" ? SIGNAL_EXIT_CODES[this.reason.signal] : ExitCode.migrationFailed;
  }

  override attributes(): Record<string, unknown> {
    return this.reason.kind === "signal" ? { signal: this.reason.signal } : { budget_ms: this.reason.limitMs };
  }
}

export function describeReason(reason: CancelReason): string {
  return reason.kind === "signal" ? `cancelled by ${reason.signal}` : `the run exceeded its time budget of ${formatDuration(reason.limitMs)} (MIGRATE_RUN_TIMEOUT)`;
}

/**
 * Each refusal with its fix; refusals that share one fix (baseline's every file, say) are listed
 * together, in the order of the first of them, and the fix is said once under the last.
 */
function refusalLines(refusals: readonly Refusal[]): string[] {
  const byFix = new Map<string, Refusal[]>();
  for (const refusal of refusals) byFix.set(refusal.resolution, [...(byFix.get(refusal.resolution) ?? []), refusal]);
  return [...byFix].flatMap(([resolution, group]) =>
    group.map((r, index) => {
      const problem = `${r.file}${r.line ? `:${r.line}` : ""}: ${r.message}`;
      if (index < group.length - 1) return problem;
      return `${problem}\n    fix${group.length > 1 ? ` (for these ${group.length})` : ""}: ${resolution}`;
    }),
  );
}

function formatProblems(title: string, problems: readonly string[]): string {
  if (problems.length === 1) return `${title}: ${problems[0]}`;
  return `${title} (${problems.length} problems):\n${problems.map((p) => `  - ${p}`).join("\n")}`;
}

function maskServerError(server: ServerError, secrets: readonly string[]): ServerError {
  if (secrets.length === 0) return server;
  const mask = (text: string) => maskAll(text, secrets);
  return {
    ...server,
    message: mask(server.message),
    ...(server.detail !== undefined && { detail: mask(server.detail) }),
    ...(server.hint !== undefined && { hint: mask(server.hint) }),
    ...(server.where !== undefined && { where: mask(server.where) }),
  };
}

function formatMigrationFailure(location: SourceLocation, server: ServerError, outcome: string): string {
  return [...failureLines(location, server), `  ${outcome}`].join("\n");
}

/**
 * A failure's place and PostgreSQL's words: `file:line:column: message (SQLSTATE code)`, the
 * statement, and the detail, hint and context the server gave. An error with no SQLSTATE was
 * thrown by the migration's own code (a TypeScript migration), and says so instead.
 */
export function failureLines(location: SourceLocation, server: ServerError): string[] {
  const source = server.code === UNKNOWN_CODE ? "thrown by the migration's code, not by PostgreSQL" : `SQLSTATE ${server.code}`;
  return [
    `${location.file}:${location.line}:${location.column}: ${server.message} (${source})`,
    `  statement: ${location.statement}`,
    ...(server.detail ? [`  detail: ${server.detail}`] : []),
    ...(server.hint ? [`  hint: ${server.hint}`] : []),
    ...(server.where ? [`  where: ${server.where.split("\n")[0]}`] : []),
  ];
}

/** What errorCode() gives an error that carries no code. */
export const UNKNOWN_CODE = "UNKNOWN";
