/**
 * The pause before a destructive operator command. At a terminal the operator sees what will
 * happen and has five seconds to press Ctrl-C; a script must say --yes, so nothing destructive
 * ever runs because a pipe happened to be connected.
 */
import { CancelledError, ConfigError } from "../shared/errors.ts";
import { cancelReasonOf } from "../shared/cancellation.ts";
import type { Logger } from "../shared/log.ts";

export const CONFIRM_WAIT_MS = 5_000;

export interface ConfirmDeps {
  readonly interactive: boolean;
  readonly logger: Logger;
  /** Resolves after `ms`, or as soon as `signal` is aborted. */
  readonly wait: (ms: number) => Promise<void>;
  /** Aborted by Ctrl-C, SIGTERM or the run budget: a pause that ends so stops the command. */
  readonly signal: AbortSignal;
}

export function createConfirm({ interactive, logger, wait, signal }: ConfirmDeps) {
  return async (command: string, yes: boolean, summary: readonly string[]): Promise<void> => {
    for (const line of summary) logger.info("confirm_plan", line, { command });
    if (yes) return;
    if (!interactive) {
      throw new ConfigError([`${command} changes the database and there is no terminal to confirm at: add --yes to go ahead`]);
    }
    logger.warn("confirm_wait", `${command} starts in ${CONFIRM_WAIT_MS / 1000} seconds; press Ctrl-C to abort`, { command });
    await wait(CONFIRM_WAIT_MS);
    const reason = cancelReasonOf(signal);
    if (reason) throw new CancelledError(reason, `waiting for the operator to confirm ${command}, before it changed anything`);
  };
}
