/** railway.toml's pre-deploy command, turned into the argument vector Railway executes. */
import { join } from "node:path";

/**
 * Railway runs the command without a shell: the one string in `preDeployCommand` is split on
 * spaces and executed as it is. Quotes, `$VAR` or `&&` would reach the program literally.
 */
export async function preDeployArgv(repoRoot: string): Promise<string[]> {
  const config = Bun.TOML.parse(await Bun.file(join(repoRoot, "railway.toml")).text()) as { deploy?: { preDeployCommand?: unknown } };
  const command = config.deploy?.preDeployCommand;
  if (!Array.isArray(command) || command.length !== 1 || typeof command[0] !== "string") {
    throw new Error(`railway.toml: deploy.preDeployCommand should hold one command, got ${JSON.stringify(command)}`);
  }
  return command[0].split(" ").filter((word) => word.length > 0);
}
