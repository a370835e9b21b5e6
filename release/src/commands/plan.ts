/** PLACEHOLDER: to be written for issue 3. */
import type { ExitCode } from "../errors.ts";
import type { Command } from "../config.ts";
import type { ReadOnlyRun } from "./context.ts";

export type PlanOptions = Extract<Command, { name: "plan" }>;

export async function plan(_run: ReadOnlyRun, _options: PlanOptions): Promise<ExitCode> {
  throw new Error("plan is not implemented yet");
}
