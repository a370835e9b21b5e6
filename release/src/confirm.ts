/**
 * The pause before a destructive operator command. At a terminal the operator sees what will
 * happen and has five seconds to press Ctrl-C; a script must say --yes, so nothing destructive
 * ever runs because a pipe happened to be connected.
 */
import { ConfigError } from "./errors.ts";
import type { Logger } from "./log.ts";

export const CONFIRM_WAIT_MS = 5_000;

export interface ConfirmDeps {
  readonly interactive: boolean;
  readonly logger: Logger;
  readonly wait: (ms: number) => Promise<void>;
}

export function createConfirm({ interactive, logger, wait }: ConfirmDeps) {
  return async (command: string, yes: boolean, summary: readonly string[]): Promise<void> => {
    for (const line of summary) logger.info("confirm_plan", line, { command });
    if (yes) return;
    if (!interactive) {
      throw new ConfigError([`${command} changes the database and there is no terminal to confirm at: add --yes to go ahead`]);
    }
    logger.warn("confirm_wait", `${command} starts in ${CONFIRM_WAIT_MS / 1000} seconds; press Ctrl-C to abort`, { command });
    await wait(CONFIRM_WAIT_MS);
  };
}
