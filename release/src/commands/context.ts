/**
 * What commands are given. Read-only commands (status, plan) get a session; commands that change
 * the database, or run migrations at all (up, resolve, down, baseline, rehearse), get the session
 * that holds the migration lock for the job's own queries, and open the migration session, a
 * second connection, only when they have migration SQL to run.
 */
import type { Sql } from "postgres";
import type { Session } from "../database/database.ts";
import type { ScratchServer } from "../run/scratch-database.ts";
import type { HeldLock } from "../database/lock.ts";
import type { WatchedBackend } from "../database/lock-waits.ts";
import type { Logger } from "../shared/log.ts";
import type { JobFileSystem, MigrationFile } from "../files/migration-files.ts";
import type { LintMode } from "../shared/config.ts";
import type { MigrationStorage } from "../database/storage.ts";
import type { SqlParser } from "../files/sql-statements.ts";
import type { MigrationPolicy } from "../shared/config.ts";
import type { RunEvents } from "../run/run-events.ts";
import type { RunHistory } from "../database/run-history.ts";
import type { LintDeps } from "../lint/lint.ts";
import type { Squawk } from "../lint/squawk.ts";

/** Where a command's own document (a table, or one JSON document) goes: stdout. */
export type WriteDocument = (text: string) => void;

/** What every command gets: the migration files, where its output goes, and the parser. */
export interface CommandRun {
  readonly files: readonly MigrationFile[];
  readonly logger: Logger;
  readonly writeDocument: WriteDocument;
  /** Loads the SQL parser (about 20 ms); call it only when there is SQL to parse. */
  readonly loadParser: () => Promise<SqlParser>;
}

/** What a command that needs no database gets: the files, and what it may write or lint with. */
export interface FilesRun extends CommandRun {
  readonly migrationsDir: string;
  readonly fs: JobFileSystem;
  readonly squawk: Squawk;
  /** MIGRATE_LINT: "warn" reports lint errors as warnings for this run. */
  readonly lintMode: LintMode;
  /** Aborted by SIGTERM or SIGINT. */
  readonly signal: AbortSignal;
}

export interface ReadOnlyRun extends CommandRun {
  /**
   * The session for the job's own queries: the tracking table, the run history, the schema checks.
   * With the lock held, it is the lock's session; migration SQL never runs on it.
   */
  readonly sql: Sql;
  readonly storage: MigrationStorage;
  readonly history: RunHistory;
  /** What the lint gate needs: the rule levels beside the migrations, the parser, MIGRATE_LINT. */
  readonly lint: LintDeps;
}

/** The migration session, and the lock's session watching it for lock waits. */
export interface MigrationWork {
  /** The migration session's queries: `work.sql`. */
  readonly sql: Sql;
  /** The migration session itself, which migrations run on and which is reset between them. */
  readonly work: Session;
  readonly monitor: WatchedBackend;
}

export interface LockedRun extends ReadOnlyRun {
  readonly lock: HeldLock;
  /** Opens the migration session on first call (later calls return the same): a run with nothing to apply never connects twice. */
  readonly migrationWork: () => Promise<MigrationWork>;
  /** Where the run's events go: the log, the run history, and the attribution of server notices. */
  readonly events: RunEvents;
  /** Timeouts and lock-contention retries for each migration. */
  readonly policy: MigrationPolicy;
  /** Aborted by SIGTERM, SIGINT or the run's time budget. */
  readonly signal: AbortSignal;
  /** The target's server, where a scratch database can be made to build a schema away from the real one (baseline). */
  readonly scratch: ScratchServer;
  /**
   * Before a destructive change (down, baseline): with `yes`, go on; at a terminal, show `summary`
   * and wait five seconds so the operator can press Ctrl-C; otherwise refuse with exit 2.
   */
  readonly confirm: (command: string, yes: boolean, summary: readonly string[]) => Promise<void>;
}

/** A locked run with its migration session open: `sql` is now the migration session's. */
export type LockedWork = LockedRun & MigrationWork;

export async function withMigrationWork(run: LockedRun): Promise<LockedWork> {
  return { ...run, ...(await run.migrationWork()) };
}
