/**
 * Stopping a run on purpose: SIGTERM (Railway stopping the deploy), SIGINT (Ctrl-C), or the
 * whole-run time budget. The running statement is cancelled on the server, its transaction rolls
 * back, the lock is released, and the process exits with the conventional code. The reason and
 * the error that carries it (CancelledError) are in errors.ts, with every other failure.
 */
import { CancelledError, type CancelReason } from "./errors.ts";

/** The reason a signal was aborted with, when it was aborted by the job's own cancellation. */
export function cancelReasonOf(signal: AbortSignal): CancelReason | undefined {
  return signal.aborted ? (signal.reason as CancelReason) : undefined;
}

/** Stops before starting the next piece of work once the run is cancelled. */
export function throwIfCancelled(signal: AbortSignal, before: string): void {
  const reason = cancelReasonOf(signal);
  if (reason) throw new CancelledError(reason, `before ${before}`);
}

/** Waits `ms`, or less when the run is cancelled meanwhile (the caller then checks the signal). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Awaited on every turn of a long loop (over a large file's statements or findings). It hands the
 * event loop back at most every CHECKPOINT_INTERVAL_MS, so a SIGTERM handler runs within that, and
 * then stops the loop with CancelledError once the run is cancelled.
 */
export type Checkpoint = () => Promise<void>;

/** Short against Railway's 5-second grace; long enough that yielding costs nothing measurable. */
const CHECKPOINT_INTERVAL_MS = 50;

/**
 * Checkpoints for one piece of work (`doing`, for the cancellation message). Without a signal (a
 * read-only command, which the entry point's forced exit ends) they only hand the event loop back.
 */
export function checkpoints(signal: AbortSignal | undefined, doing: string): Checkpoint {
  let handedBackAt = performance.now();
  return async () => {
    if (performance.now() - handedBackAt >= CHECKPOINT_INTERVAL_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      handedBackAt = performance.now();
    }
    const reason = signal && cancelReasonOf(signal);
    if (reason) throw new CancelledError(reason, doing);
  };
}
