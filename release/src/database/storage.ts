/**
 * The tracking table, and Umzug's storage contract on top of it.
 *
 * Unlike Umzug's own storages, `logMigration` writes through the connection in the migration's
 * context: for a transactional migration that is the migration's own transaction, so the SQL and
 * its record commit together or not at all.
 */
import { JobTable, qualifiedTable, type Queryable } from "./database.ts";
import type { UmzugStorage } from "umzug";
import type { TableName } from "../shared/config.ts";
import type { MigrationFile } from "../files/migration-files.ts";
import type { Redactor } from "../shared/redact.ts";
import { inlined } from "./inline-values.ts";
import { failUnless, type Pipeline } from "./pipeline.ts";

type UpsertExtra = { execution_ms?: number; hold_reason?: string | null; last_error?: string };

export type MigrationStatus = "applied" | "held" | "running" | "failed";

/** One row of the tracking table. */
export interface MigrationRecord {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly status: MigrationStatus;
  readonly transactional: boolean;
  readonly appliedAt: Date | null;
  readonly executionMs: number | null;
  readonly appliedBy: string;
  readonly holdReason: string | null;
  readonly lastError: string | null;
}

/** Who is applying: Railway's deployment, commit and environment when present, else user@host. */
export interface RunIdentity {
  readonly appliedBy: string;
  readonly deploymentId: string | undefined;
  readonly gitCommit: string | undefined;
  readonly environment: string | undefined;
}

/** What Umzug hands to a migration and to the storage: the connection to write through. */
export interface MigrationContext {
  /** The migration's transaction, or the plain session for a no-transaction file. */
  readonly sql: Queryable;
  readonly migration: MigrationFile;
  /** performance.now() when the migration started, for execution_ms. */
  readonly startedAt: number;
  /** Set when the migration's statements are sent in one pipeline (see pipeline.ts): the record joins it. */
  readonly pipeline?: Pipeline | undefined;
}

/** The statuses of a migration that ran, wholly or in part: the ones Umzug counts as executed. */
const RAN: ReadonlySet<MigrationStatus> = new Set(["applied", "running", "failed"]);

const TABLE_COMMENT = "Studio release migrations, one row per version. Written by release/migrate.ts; change it only through its resolve command.";

type RecordRow = {
  version: string;
  name: string;
  checksum: string;
  status: MigrationStatus;
  transactional: boolean;
  applied_at: Date | null;
  execution_ms: number | null;
  applied_by: string;
  hold_reason: string | null;
  last_error: string | null;
};

export class MigrationStorage implements UmzugStorage<MigrationContext> {
  readonly #table: TableName;
  readonly #existence: JobTable;
  readonly #identity: RunIdentity;
  /** What Umzug asks `executed` for: the names recorded as run, wholly or in part, with their versions. */
  #executed = new Map<string, number>();
  readonly #redact: Redactor;

  /** `redact` masks the run's secrets in the error messages the table keeps, as the logger does in its lines. */
  constructor(table: TableName, identity: RunIdentity, redact: Redactor) {
    this.#table = table;
    this.#existence = new JobTable(table);
    this.#identity = identity;
    this.#redact = redact;
  }

  get table(): TableName {
    return this.#table;
  }

  get qualifiedName(): string {
    return this.#existence.qualifiedName;
  }

  /**
   * Creates the schema and table when absent. Called only while holding the migration lock, so two
   * runs never race on the DDL, and only after validation passed, so a refused run changes nothing.
   * The existence check first keeps a no-op run free of DDL.
   */
  async ensureTable(sql: Queryable): Promise<void> {
    if (await this.#existence.exists(sql)) return;
    // The run history's table may have created the schema already: its "already exists" NOTICE would only be noise in the deploy log.
    await sql`select set_config('client_min_messages', 'warning', false)`;
    await sql`create schema if not exists ${sql(this.#table.schema)}`;
    await sql`reset client_min_messages`;
    await sql`
      create table if not exists ${qualifiedTable(sql, this.#table)} (
        version bigint primary key,
        name text not null,
        checksum text not null,
        status text not null check (status in ('applied', 'held', 'running', 'failed')),
        transactional boolean not null,
        applied_at timestamptz,
        execution_ms integer,
        applied_by text not null,
        deployment_id text,
        git_commit text,
        environment text,
        hold_reason text,
        last_error text,
        updated_at timestamptz not null default now()
      )`;
    // COMMENT takes no parameters; the text is a constant without quotes.
    await sql`comment on table ${qualifiedTable(sql, this.#table)} is ${sql.unsafe(`'${TABLE_COMMENT}'`)}`;
  }

  /** The tracking table, and whether it exists as far as this run has seen. */
  get jobTable(): JobTable {
    return this.#existence;
  }

  /** Whether the tracking table exists (asked of the database only until it is seen). */
  exists(sql: Queryable): Promise<boolean> {
    return this.#existence.exists(sql);
  }

  /** Every row, by version; none when the table does not exist yet (it is created only once a run passes validation). */
  async records(sql: Queryable): Promise<MigrationRecord[]> {
    if (!(await this.#existence.exists(sql))) return [];
    const rows = await sql<RecordRow[]>`
      select version, name, checksum, status, transactional, applied_at, execution_ms, applied_by, hold_reason, last_error
      from ${qualifiedTable(sql, this.#table)} order by version`;
    this.#executed = new Map(rows.filter((row) => RAN.has(row.status)).map((row) => [row.name, Number(row.version)]));
    return rows.map((row) => ({
      version: Number(row.version),
      name: row.name,
      checksum: row.checksum,
      status: row.status,
      transactional: row.transactional,
      appliedAt: row.applied_at,
      executionMs: row.execution_ms,
      appliedBy: row.applied_by,
      holdReason: row.hold_reason,
      lastError: row.last_error,
    }));
  }

  /**
   * Umzug contract. Called by Umzug before it applies (or reverts) a migration, to check that it
   * has not run yet (or has). Returns the names recorded as applied, or as started (running,
   * failed): the rows `records` read under the migration lock, as this run's own logMigration and
   * unlogMigration changed them since, in version order. Under the lock nobody else writes the
   * table, so the answer costs no query.
   */
  async executed(): Promise<string[]> {
    return [...this.#executed].sort(([, a], [, b]) => a - b).map(([name]) => name);
  }

  /**
   * Umzug contract. Called by Umzug right after a migration's `up` succeeded, with the context the
   * migration ran in: the record is written through the same connection, inside the migration's
   * transaction for a transactional file, so the two commit or roll back together. Refuses to
   * overwrite an applied record, which would mean another run applied the same version.
   */
  async logMigration({ context }: { context: MigrationContext }): Promise<void> {
    const { migration, pipeline, sql } = context;
    const executionMs = Math.round(performance.now() - context.startedAt);
    const alreadyApplied = `${migration.fileName} is already recorded as applied by another run`;
    const noteApplied = () => this.#executed.set(migration.name, migration.version);
    if (pipeline) {
      // Sent with the migration's statements; the check fails the statement, so the pipelined COMMIT rolls back.
      const insert = this.#upsertStatement(sql, migration, "applied", { execution_ms: executionMs });
      pipeline.send(inlined(sql)`with written as (${insert} returning 1) select ${sql.unsafe(failUnless("count(*) = 1", alreadyApplied))} from written`, () => new Error(alreadyApplied));
      pipeline.onSuccess(noteApplied);
      return;
    }
    const rows = await this.#upsert(sql, migration, "applied", { execution_ms: executionMs });
    if (rows === 0) throw new Error(alreadyApplied);
    noteApplied();
  }

  /** Umzug contract. Called by Umzug right after a migration's `down` succeeded, through the same connection: removes its record. */
  async unlogMigration({ context }: { context: MigrationContext }): Promise<void> {
    await this.forget(context.sql, context.migration.version);
    this.#executed.delete(context.migration.name);
  }

  /** Remembers that a file is held, so releasing the hold later may apply it below higher versions. */
  async recordHeld(sql: Queryable, migration: MigrationFile): Promise<void> {
    await this.#upsert(sql, migration, "held", { hold_reason: migration.holdReason ?? null }, ["held"]);
  }

  /** A no-transaction migration is starting: if the run dies part-way, this row says so. */
  async recordRunning(sql: Queryable, migration: MigrationFile): Promise<void> {
    await this.#upsert(sql, migration, "running", {}, ["held"]);
  }

  async recordFailed(sql: Queryable, migration: MigrationFile, error: string): Promise<void> {
    await this.#upsert(sql, migration, "failed", { last_error: this.#redact(error) }, ["running"]);
  }

  /** Records a failed file as applied without running it (resolve --applied). */
  async recordApplied(sql: Queryable, migration: MigrationFile): Promise<number> {
    return this.#upsert(sql, migration, "applied", {}, ["running", "failed"]);
  }

  /**
   * A failed no-transaction migration was undone by hand (resolve --rolled-back): it becomes
   * retryable. It is kept as a held row, not deleted, so that retrying it is not refused as out of
   * order when higher versions are applied.
   */
  async recordRolledBack(sql: Queryable, migration: MigrationFile): Promise<number> {
    return this.#upsert(sql, migration, "held", { hold_reason: "rolled back by resolve; retried on the next run" }, ["running", "failed"]);
  }

  /** An applied file was edited on purpose (resolve --accept-checksum): only its checksum and name change. */
  async acceptChecksum(sql: Queryable, migration: MigrationFile): Promise<number> {
    const result = await inlined(sql)`
      update ${qualifiedTable(sql, this.#table)} set checksum = ${migration.checksum}, name = ${migration.name}, updated_at = now()
      where version = ${migration.version} and status = 'applied'`;
    return result.count;
  }

  async forget(sql: Queryable, version: number): Promise<number> {
    const result = await inlined(sql)`delete from ${qualifiedTable(sql, this.#table)} where version = ${version}`;
    return result.count;
  }



  /**
   * Inserts or updates the row of `migration` to `status`. An existing row is only changed when its
   * status is one of `replacing` (by default anything but applied), so an applied record is never
   * overwritten by accident. Returns the number of rows written. `applied_at` is the database's
   * time (the transaction's start), not this machine's.
   */
  async #upsert(sql: Queryable, migration: MigrationFile, status: MigrationStatus, extra: UpsertExtra, replacing?: readonly MigrationStatus[]): Promise<number> {
    return (await this.#upsertStatement(sql, migration, status, extra, replacing)).count;
  }

  #upsertStatement(sql: Queryable, migration: MigrationFile, status: MigrationStatus, extra: UpsertExtra, replacing: readonly MigrationStatus[] = ["held", "running", "failed"]) {
    const identity = this.#identity;
    return inlined(sql)`
      insert into ${qualifiedTable(sql, this.#table)} as t (
        version, name, checksum, status, transactional, applied_at, execution_ms,
        applied_by, deployment_id, git_commit, environment, hold_reason, last_error
      ) values (
        ${migration.version}, ${migration.name}, ${migration.checksum}, ${status}, ${migration.transactional},
        case when ${status}::text = 'applied' then now() end, ${extra.execution_ms ?? null},
        ${identity.appliedBy}, ${identity.deploymentId ?? null}, ${identity.gitCommit ?? null}, ${identity.environment ?? null},
        ${extra.hold_reason ?? null}, ${extra.last_error ?? null}
      )
      on conflict (version) do update set
        name = excluded.name, checksum = excluded.checksum, status = excluded.status,
        transactional = excluded.transactional, applied_at = excluded.applied_at, execution_ms = excluded.execution_ms,
        applied_by = excluded.applied_by, deployment_id = excluded.deployment_id,
        git_commit = excluded.git_commit, environment = excluded.environment,
        hold_reason = excluded.hold_reason, last_error = excluded.last_error, updated_at = now()
      where t.status in (select json_array_elements_text(${JSON.stringify(replacing)}::text::json))`;
  }

  /**
   * Records a migration whose schema was applied by hand as applied, without running it (baseline).
   * `applied_by` is "baseline" and `execution_ms` stays empty because the job never ran it;
   * `applied_at` is when it was adopted. A plain insert: an existing row is never overwritten.
   */
  async recordBaseline(sql: Queryable, migration: MigrationFile): Promise<void> {
    const identity = this.#identity;
    await inlined(sql)`
      insert into ${qualifiedTable(sql, this.#table)} (
        version, name, checksum, status, transactional, applied_at, applied_by, deployment_id, git_commit, environment
      ) values (
        ${migration.version}, ${migration.name}, ${migration.checksum}, 'applied', ${migration.transactional}, now(),
        'baseline', ${identity.deploymentId ?? null}, ${identity.gitCommit ?? null}, ${identity.environment ?? null}
      )`;
  }
}
