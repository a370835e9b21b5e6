/** PLACEHOLDER: to be written for issue 3. */
import type { ExitCode } from "../errors.ts";
import type { Command } from "../config.ts";
import type { ReadOnlyRun } from "./context.ts";

export type StatusOptions = Extract<Command, { name: "status" }>;

export async function status(_run: ReadOnlyRun, _options: StatusOptions): Promise<ExitCode> {
  throw new Error("status is not implemented yet");
}
