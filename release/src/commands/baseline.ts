/** PLACEHOLDER: to be written for issue 3. */
import type { ExitCode } from "../errors.ts";
import type { Command } from "../config.ts";
import type { LockedRun } from "./context.ts";

export type BaselineOptions = Extract<Command, { name: "baseline" }>;

export async function baseline(_run: LockedRun, _options: BaselineOptions): Promise<ExitCode> {
  throw new Error("baseline is not implemented yet");
}
