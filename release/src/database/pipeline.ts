/**
 * Statements sent together and answered together: a migration's BEGIN, its statements, the job's
 * record, the lock check and COMMIT leave in one write and come back in one round trip, as psql
 * sends a script. Nothing needs an answer before the next is sent, because every check that could
 * stop the commit is made in SQL and fails its statement: once one statement of the transaction
 * fails, PostgreSQL refuses the rest (25P02) and turns the COMMIT into a ROLLBACK.
 */
/** A postgres.js query not sent yet: `execute()` sends it. */
interface SendableQuery {
  execute(): PromiseLike<unknown>;
}

type Settled = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

interface Sent {
  readonly settled: Promise<Settled>;
  /** The job's error for this statement's failure. */
  readonly explain: (error: unknown) => unknown;
}

export class Pipeline {
  readonly #sent: Sent[] = [];
  readonly #onSuccess: (() => void)[] = [];

  /** Sends `query` now; its failure, if it is the first, becomes `explain(error)` when settled. */
  send(query: SendableQuery, explain: (error: unknown) => unknown = (error) => error): void {
    const settled = Promise.resolve(query.execute()).then(
      (): Settled => ({ ok: true }),
      (error: unknown): Settled => ({ ok: false, error }),
    );
    this.#sent.push({ settled, explain });
  }

  /** Runs once every statement sent has succeeded: what the run may believe only after the commit. */
  onSuccess(note: () => void): void {
    this.#onSuccess.push(note);
  }

  /** Waits for every answer; throws the first failure, in the order the statements were sent. */
  async settle(): Promise<void> {
    const outcomes = await Promise.all(this.#sent.map((sent) => sent.settled));
    const failed = outcomes.findIndex((outcome) => !outcome.ok);
    if (failed >= 0) throw this.#sent[failed]!.explain((outcomes[failed] as { error: unknown }).error);
    for (const note of this.#onSuccess) note();
  }
}

/**
 * A condition checked in SQL that fails its statement when false: the text of `failure` is cast to
 * an integer, which PostgreSQL refuses (22P02), so a pipelined COMMIT after it never commits.
 */
export function failUnless(condition: string, failure: string): string {
  return `(case when ${condition} then '1' else '${failure.replace(/'/g, "''")}' end)::int`;
}
