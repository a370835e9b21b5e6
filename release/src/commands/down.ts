/** PLACEHOLDER: to be written for issue 3. */
import type { ExitCode } from "../errors.ts";
import type { Command } from "../config.ts";
import type { LockedRun } from "./context.ts";

export type DownOptions = Extract<Command, { name: "down" }>;

export async function down(_run: LockedRun, _options: DownOptions): Promise<ExitCode> {
  throw new Error("down is not implemented yet");
}
