/**
 * How the job is invoked: Railway's pre-deploy command, which is also what an operator types.
 * Every refusal's fix line starts with it, so the command it names is one to copy and run.
 */
export const COMMAND = "bun release/migrate.ts";
