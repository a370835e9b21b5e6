/**
 * The run history: a table beside the tracking table with one row per run of a command that takes
 * the lock, and one per attempt lost to lock contention. It is written on the lock's session,
 * outside every migration transaction, so a failed or cancelled run is recorded all the same.
 *
 * Rows are only ever added, and a run's own row is completed when the run ends; a row still
 * `running` belongs to a run that was killed. Every run that reaches the database is recorded, a
 * refused first deploy included: the table (and its schema) is created by the first run that needs it.
 *
 * The history is also the evidence that outlives the tracking table: a run whose checks passed
 * records, as it ends, the versions then applied and the schema it left. A tracking table that
 * later lacks one of those versions has lost a row (see migration-state.ts), and the schema is
 * what the next run checks for drift, failed and cancelled runs included, so that what the job
 * itself committed is never reported as drift.
 */
import type { TableName } from "../shared/config.ts";
import type { Sql } from "postgres";
import { errorCode, JobTable, qualifiedTable, type Queryable } from "./database.ts";
import type { LockAttempt } from "../shared/errors.ts";
import type { RunIdentity } from "./storage.ts";
import { inlined } from "./inline-values.ts";

/** "STUDIOMH" as a bigint: serialises the creation of the history table (the migration lock is "STUDIOMG"). */
const HISTORY_DDL_LOCK_KEY = "6004517954967784776";
const LOCK_NOT_AVAILABLE = "55P03";
/** undefined_table, undefined_column: the history table is missing, or older than this release. */
const TABLE_NOT_CURRENT = new Set(["42P01", "42703"]);

export type RunOutcome = "running" | "succeeded" | "failed" | "refused" | "cancelled" | "unavailable";

export interface RunSummary {
  readonly id: number;
  readonly command: string;
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly outcome: RunOutcome;
  readonly applied: number | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly appliedBy: string;
  readonly deploymentId: string | null;
  readonly lostAttempts: number;
}

export interface RunEnd {
  readonly outcome: Exclude<RunOutcome, "running">;
  readonly errorCode?: string | undefined;
  readonly errorMessage?: string | undefined;
  /** The schema as the run left it (runs whose checks passed): what the next run checks for drift against. */
  readonly schema?: RecordedSchema | undefined;
}

/** What the last run whose checks passed says was applied when it ended. */
export interface AppliedEvidence {
  readonly versions: ReadonlySet<number>;
  readonly runId: number;
  readonly finishedAt: Date;
}

/**
 * A schema as the history keeps it: the snapshot's hash, the server's fingerprint (cheap to
 * compare), and the snapshot itself to explain a later change. A run that found the schema as the
 * last one left it stores no second copy of the snapshot.
 */
export interface RecordedSchema {
  readonly hash: string;
  readonly fingerprint: string;
  readonly snapshot?: unknown;
  /** When the run that recorded it ended. */
  readonly recordedAt?: Date;
}

type SummaryRow = {
  id: string;
  command: string;
  started_at: Date;
  finished_at: Date | null;
  outcome: RunOutcome;
  applied: number | null;
  error_code: string | null;
  error_message: string | null;
  applied_by: string;
  deployment_id: string | null;
  lost_attempts: number;
};

export class RunHistory {
  readonly #table: TableName;
  readonly #existence: JobTable;
  /** The tracking table, whose existence the storage adapter has usually seen already. */
  readonly #tracking: JobTable;
  readonly #identity: RunIdentity;
  readonly #runnerVersion: string;
  #runId: number | undefined;
  #command = "";
  #validated = false;

  constructor(tracking: JobTable, identity: RunIdentity, runnerVersion: string) {
    this.#tracking = tracking;
    this.#table = { schema: tracking.name.schema, table: `${tracking.name.table}_runs` };
    this.#existence = new JobTable(this.#table);
    this.#identity = identity;
    this.#runnerVersion = runnerVersion;
  }

  get qualifiedName(): string {
    return this.#existence.qualifiedName;
  }

  /**
   * Opens this run's row. The insert names every column this release of the job writes, so on the
   * usual deploy it is the only query; a missing table (42P01) or an older one (42703) is created
   * or brought up to date first, and the row inserted again.
   */
  async recordStart(sql: Sql, command: string): Promise<void> {
    this.#command = command;
    const insert = () => this.#insertRun(sql, command);
    const id = await insert().catch(async (error: unknown) => {
      if (!TABLE_NOT_CURRENT.has(errorCode(error))) throw error;
      await this.#createOrUpgrade(sql);
      return insert();
    });
    this.#existence.noteExists(true);
    this.#runId = id;
  }

  async #insertRun(sql: Sql, command: string): Promise<number> {
    const identity = this.#identity;
    const [run] = await inlined(sql)<{ id: string }[]>`
      insert into ${qualifiedTable(sql, this.#table)} (kind, command, outcome, applied_by, deployment_id, git_commit, environment, runner_version, applied_versions)
      values ('run', ${command}, 'running', ${identity.appliedBy}, ${identity.deploymentId ?? null},
              ${identity.gitCommit ?? null}, ${identity.environment ?? null}, ${this.#runnerVersion}, null)
      returning id`;
    return Number(run!.id);
  }

  /**
   * The run's checks of the tracking table passed: from now on what the table holds is what the job
   * itself made it, so the run's end records it (and the schema) as the next run's evidence. A run
   * refused by those checks records neither, so a damaged table never becomes the evidence.
   */
  markValidated(): void {
    this.#validated = true;
  }

  get validated(): boolean {
    return this.#validated;
  }

  /** One attempt at a migration was rolled back because of another session's locks. */
  async recordLostAttempt(sql: Queryable, migration: string, attempt: LockAttempt): Promise<void> {
    if (this.#runId === undefined) return;
    const identity = this.#identity;
    await inlined(sql)`
      insert into ${qualifiedTable(sql, this.#table)} (run_id, kind, command, migration, attempt, finished_at, outcome, error_code, error_message,
                                     applied_by, deployment_id, git_commit, environment, runner_version)
      values (${this.#runId}, 'attempt', ${this.#command}, ${migration}, ${attempt.attempt}, clock_timestamp(), 'lost', ${attempt.code},
              ${attempt.blockers}, ${identity.appliedBy}, ${identity.deploymentId ?? null}, ${identity.gitCommit ?? null},
              ${identity.environment ?? null}, ${this.#runnerVersion})`;
  }

  /**
   * Completes this run's row; `applied` counts the tracking rows this run applied. A validated run
   * also records the versions applied now, the evidence the next run checks the tracking table against.
   */
  async recordEnd(sql: Queryable, end: RunEnd): Promise<void> {
    const runId = this.#runId;
    if (runId === undefined) return;
    const tracking = await this.#tracking.exists(sql);
    await this.#complete(sql, runId, end, tracking ? "counted" : "none").catch((error: unknown) => {
      // Another session's lock on the tracking table must not leave the run `running`: its end is recorded without the counts.
      if (!tracking || errorCode(error) !== LOCK_NOT_AVAILABLE) throw error;
      return this.#complete(sql, runId, end, "unknown");
    });
  }

  /** The run's row completed; `applied` counts the tracking table's rows, is 0 without one, or unknown. */
  async #complete(sql: Queryable, runId: number, end: RunEnd, applied: "counted" | "none" | "unknown"): Promise<void> {
    const count =
      applied === "counted"
        ? sql`(select count(*) from ${qualifiedTable(sql, this.#tracking.name)} t where t.status = 'applied' and t.applied_at >= r.started_at)`
        : applied === "none"
          ? sql`0`
          : sql`null`;
    const versions =
      applied === "counted" && this.#validated
        ? sql`(select coalesce(jsonb_agg(t.version order by t.version), '[]'::jsonb) from ${qualifiedTable(sql, this.#tracking.name)} t where t.status = 'applied')`
        : sql`null`;
    await inlined(sql)`
      update ${qualifiedTable(sql, this.#table)} as r set
        finished_at = clock_timestamp(),
        outcome = ${end.outcome},
        error_code = ${end.errorCode ?? null},
        error_message = ${end.errorMessage ?? null},
        applied = ${count},
        applied_versions = ${versions},
        schema_hash = ${end.schema?.hash ?? null},
        schema_fingerprint = ${end.schema?.fingerprint ?? null},
        schema_snapshot = ${end.schema?.snapshot === undefined ? null : JSON.stringify(end.schema.snapshot)}::text::jsonb
      where r.id = ${runId}`;
  }

  /**
   * Creates the history table and its schema, or adds what an older job's table lacks. Runs of a
   * fresh database may arrive together, before any holds the migration lock, and CREATE ... IF NOT
   * EXISTS is not safe against a concurrent CREATE: a transaction-level advisory lock of its own
   * serialises them.
   */
  async #createOrUpgrade(sql: Sql): Promise<void> {
    await sql.begin(async (tx) => {
      await inlined(tx)`select pg_advisory_xact_lock(${HISTORY_DDL_LOCK_KEY}::bigint), set_config('client_min_messages', 'warning', true)`;
      // A run that waited here finds the table made by the one before it: no DDL, no table lock.
      if (await this.#isCurrent(tx)) return;
      await tx`create schema if not exists ${tx(this.#table.schema)}`;
      await tx`
        create table if not exists ${qualifiedTable(tx, this.#table)} (
          id bigint generated always as identity primary key,
          run_id bigint references ${qualifiedTable(tx, this.#table)} (id),
          kind text not null check (kind in ('run', 'attempt')),
          command text not null,
          migration text,
          attempt integer,
          started_at timestamptz not null default clock_timestamp(),
          finished_at timestamptz,
          outcome text not null check (outcome in ('running', 'succeeded', 'failed', 'refused', 'cancelled', 'unavailable', 'lost')),
          applied integer,
          error_code text,
          error_message text,
          applied_by text not null,
          deployment_id text,
          git_commit text,
          environment text,
          runner_version text not null,
          schema_hash text,
          schema_fingerprint text,
          schema_snapshot jsonb
        )`;
      // Added after the first release of the table: the versions applied when a validated run ended.
      await tx`alter table ${qualifiedTable(tx, this.#table)} add column if not exists applied_versions jsonb`;
    });
  }

  /** Whether the history table exists, with every column this release of the job writes. */
  async #isCurrent(sql: Queryable): Promise<boolean> {
    const [row] = await inlined(sql)<{ current: boolean }[]>`
      select exists (select 1 from pg_attribute where attrelid = to_regclass(${this.#existence.qualifiedName}) and attname = 'applied_versions') as current`;
    return row!.current;
  }

  /** What the last validated run says was applied when it ended; none before the first such run. */
  async appliedEvidence(sql: Queryable): Promise<AppliedEvidence | undefined> {
    if (!(await this.#existence.exists(sql))) return undefined;
    const [row] = await sql<{ id: string; applied_versions: number[]; finished_at: Date }[]>`
      select id, applied_versions, finished_at from ${qualifiedTable(sql, this.#table)}
      where kind = 'run' and applied_versions is not null and finished_at is not null
      order by id desc limit 1`;
    return row && { versions: new Set(row.applied_versions.map(Number)), runId: Number(row.id), finishedAt: row.finished_at };
  }

  /** The schema the last validated run left (without its snapshot), if any run recorded one. */
  async lastSchema(sql: Queryable): Promise<RecordedSchema | undefined> {
    if (!(await this.#existence.exists(sql))) return undefined;
    const [row] = await sql<{ schema_hash: string; schema_fingerprint: string; finished_at: Date }[]>`
      select schema_hash, schema_fingerprint, finished_at from ${qualifiedTable(sql, this.#table)}
      where kind = 'run' and schema_hash is not null and schema_fingerprint is not null
      order by id desc limit 1`;
    return row && { hash: row.schema_hash, fingerprint: row.schema_fingerprint, recordedAt: row.finished_at };
  }

  /** The stored snapshot with this hash (kept by the run that first recorded it). */
  async storedSnapshot(sql: Queryable, hash: string): Promise<unknown> {
    const [row] = await inlined(sql)<{ schema_snapshot: unknown }[]>`
      select schema_snapshot from ${qualifiedTable(sql, this.#table)}
      where schema_hash = ${hash} and schema_snapshot is not null order by id desc limit 1`;
    return row?.schema_snapshot;
  }

  /** The last runs, newest first, for `status`. */
  async recent(sql: Queryable, limit: number): Promise<RunSummary[]> {
    if (!(await this.#existence.exists(sql))) return [];
    const rows = await inlined(sql)<SummaryRow[]>`
      select r.id, r.command, r.started_at, r.finished_at, r.outcome, r.applied, r.error_code, r.error_message,
             r.applied_by, r.deployment_id,
             (select count(*)::int from ${qualifiedTable(sql, this.#table)} a where a.run_id = r.id) as lost_attempts
      from ${qualifiedTable(sql, this.#table)} r where r.kind = 'run' order by r.id desc limit ${limit}`;
    return rows.map((row) => ({
      id: Number(row.id),
      command: row.command,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      outcome: row.outcome,
      applied: row.applied,
      errorCode: row.error_code,
      errorMessage: row.error_message,
      appliedBy: row.applied_by,
      deploymentId: row.deployment_id,
      lostAttempts: row.lost_attempts,
    }));
  }


}
