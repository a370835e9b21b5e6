/** PLACEHOLDER: to be written for issue 3. */
import type { ExitCode } from "../errors.ts";
import type { Command } from "../config.ts";
import type { LockedRun } from "./context.ts";

export type RehearseOptions = Extract<Command, { name: "rehearse" }>;

export async function rehearse(_run: LockedRun, _options: RehearseOptions): Promise<ExitCode> {
  throw new Error("rehearse is not implemented yet");
}
