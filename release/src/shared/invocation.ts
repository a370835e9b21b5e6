/**
 * How the job is invoked: Railway's pre-deploy command, which is also what an operator types.
 * Every refusal's fix line names a command to copy and run, written with fixCommand: where the
 * line is read decides its form. At a terminal it is the local `bun release/migrate.ts …`; in a
 * deploy's log, read by someone at a laptop who cannot reach the private network, it is
 * `railway run bun release/migrate.ts … --public-url`. The form is chosen as each line is written
 * (renderFixCommands, with the redaction every line goes through).
 */
export const COMMAND = "bun release/migrate.ts";

/** Around a command in a message until it is written: characters from Unicode's private use area, never in the job's own text. */
const OPEN = "\uE000";
const CLOSE = "\uE001";
const MARKED = new RegExp(`${OPEN}([^${CLOSE}]*)${CLOSE}`, "g");

/** `bun release/migrate.ts <args>`, as the fix line's reader will run it (see renderFixCommands). */
export function fixCommand(args: string): string {
  return `${OPEN}${COMMAND} ${args}${CLOSE}`;
}

/** Every fix command in `text`, in its local form, or in the form that works from a laptop for a deploy's log. */
export function renderFixCommands(text: string, fromDeployLog: boolean): string {
  return text.replace(MARKED, (_whole, command: string) => (fromDeployLog ? `railway run ${command} --public-url` : command));
}
