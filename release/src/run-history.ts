/**
 * The run history: a table beside the tracking table with one row per run of a command that takes
 * the lock, and one per attempt lost to lock contention. It is written on the lock's session,
 * outside every migration transaction, so a failed or cancelled run is recorded all the same.
 *
 * Rows are only ever added, and a run's own row is completed when the run ends; a row still
 * `running` belongs to a run that was killed. The table is created only once the tracking table
 * exists, so a run refused on a fresh database changes nothing there.
 */
import type { TableName } from "./config.ts";
import { JobTable, qualifiedTable, type Queryable } from "./database.ts";
import type { LockAttempt } from "./errors.ts";
import type { RunIdentity } from "./storage.ts";

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
  /** The schema as the run left it (successful runs): what the next run checks for drift against. */
  readonly schema?: RecordedSchema | undefined;
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
  readonly #tracking: TableName;
  readonly #identity: RunIdentity;
  readonly #runnerVersion: string;
  #runId: number | undefined;
  #command = "";
  #startedAt: Date | undefined;

  constructor(tracking: TableName, identity: RunIdentity, runnerVersion: string) {
    this.#tracking = tracking;
    this.#table = { schema: tracking.schema, table: `${tracking.table}_runs` };
    this.#existence = new JobTable(this.#table);
    this.#identity = identity;
    this.#runnerVersion = runnerVersion;
  }

  get qualifiedName(): string {
    return this.#existence.qualifiedName;
  }

  /** Notes when the run started (the server's clock) and opens its row if the history table exists. */
  async recordStart(sql: Queryable, command: string): Promise<void> {
    this.#command = command;
    const [row] = await sql<{ now: Date; exists: boolean }[]>`
      select clock_timestamp() as now, to_regclass(${this.#existence.qualifiedName}) is not null as exists`;
    this.#startedAt = row!.now;
    if (this.#existence.noteExists(row!.exists)) await this.#insertRun(sql);
  }

  /** One attempt at a migration was rolled back because of another session's locks. */
  async recordLostAttempt(sql: Queryable, migration: string, attempt: LockAttempt): Promise<void> {
    if (!(await this.ensureRun(sql))) return;
    const identity = this.#identity;
    await sql`
      insert into ${qualifiedTable(sql, this.#table)} (run_id, kind, command, migration, attempt, finished_at, outcome, error_code, error_message,
                                     applied_by, deployment_id, git_commit, environment, runner_version)
      values (${this.#runId!}, 'attempt', ${this.#command}, ${migration}, ${attempt.attempt}, clock_timestamp(), 'lost', ${attempt.code},
              ${attempt.blockers}, ${identity.appliedBy}, ${identity.deploymentId ?? null}, ${identity.gitCommit ?? null},
              ${identity.environment ?? null}, ${this.#runnerVersion})`;
  }

  /** Completes this run's row; `applied` counts the tracking rows this run applied. */
  async recordEnd(sql: Queryable, end: RunEnd): Promise<void> {
    if (!(await this.ensureRun(sql))) return;
    await sql`
      update ${qualifiedTable(sql, this.#table)} as r set
        finished_at = clock_timestamp(),
        outcome = ${end.outcome},
        error_code = ${end.errorCode ?? null},
        error_message = ${end.errorMessage ?? null},
        applied = (select count(*) from ${qualifiedTable(sql, this.#tracking)} t
                   where t.status = 'applied' and t.applied_at >= r.started_at),
        schema_hash = ${end.schema?.hash ?? null},
        schema_fingerprint = ${end.schema?.fingerprint ?? null},
        schema_snapshot = ${end.schema?.snapshot === undefined ? null : JSON.stringify(end.schema.snapshot)}::text::jsonb
      where r.id = ${this.#runId!}`;
  }

  /**
   * The run's row, created late (with the run's own start time) when this run is the one that
   * created the tracking table. False while the database has no tracking table at all. Called
   * before the schema the run leaves is read, so that schema already holds the history table.
   */
  async ensureRun(sql: Queryable): Promise<boolean> {
    if (this.#runId !== undefined) return true;
    if (this.#startedAt === undefined || !(await new JobTable(this.#tracking).exists(sql))) return false;
    await this.#ensureTable(sql);
    await this.#insertRun(sql);
    return true;
  }

  async #insertRun(sql: Queryable): Promise<void> {
    const identity = this.#identity;
    const [row] = await sql<{ id: string }[]>`
      insert into ${qualifiedTable(sql, this.#table)} (kind, command, started_at, outcome, applied_by, deployment_id, git_commit, environment, runner_version)
      values ('run', ${this.#command}, ${this.#startedAt!}, 'running', ${identity.appliedBy}, ${identity.deploymentId ?? null},
              ${identity.gitCommit ?? null}, ${identity.environment ?? null}, ${this.#runnerVersion})
      returning id`;
    this.#runId = Number(row!.id);
  }

  async #ensureTable(sql: Queryable): Promise<void> {
    await sql`
      create table if not exists ${qualifiedTable(sql, this.#table)} (
        id bigint generated always as identity primary key,
        run_id bigint references ${qualifiedTable(sql, this.#table)} (id),
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
  }

  /** The schema the last successful run left (without its snapshot), if any run recorded one. */
  async lastSchema(sql: Queryable): Promise<RecordedSchema | undefined> {
    if (!(await this.#existence.exists(sql))) return undefined;
    const [row] = await sql<{ schema_hash: string; schema_fingerprint: string; finished_at: Date }[]>`
      select schema_hash, schema_fingerprint, finished_at from ${qualifiedTable(sql, this.#table)}
      where kind = 'run' and outcome = 'succeeded' and schema_hash is not null and schema_fingerprint is not null
      order by id desc limit 1`;
    return row && { hash: row.schema_hash, fingerprint: row.schema_fingerprint, recordedAt: row.finished_at };
  }

  /** The stored snapshot with this hash (kept by the run that first recorded it). */
  async storedSnapshot(sql: Queryable, hash: string): Promise<unknown> {
    const [row] = await sql<{ schema_snapshot: unknown }[]>`
      select schema_snapshot from ${qualifiedTable(sql, this.#table)}
      where schema_hash = ${hash} and schema_snapshot is not null order by id desc limit 1`;
    return row?.schema_snapshot;
  }

  /** The last runs, newest first, for `status`. */
  async recent(sql: Queryable, limit: number): Promise<RunSummary[]> {
    if (!(await this.#existence.exists(sql))) return [];
    const rows = await sql<SummaryRow[]>`
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
