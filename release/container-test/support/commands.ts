/** Runs the machine's container tools as argument vectors, never through a shell. */

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandOptions {
  /** Variables added to this process's environment for the command. */
  readonly env?: Record<string, string>;
  readonly cwd?: string;
}

export async function runCommand(argv: readonly string[], { env = {}, cwd }: CommandOptions = {}): Promise<CommandResult> {
  const child = Bun.spawn([...argv], {
    env: { ...process.env, ...env },
    ...(cwd ? { cwd } : {}),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

/** Runs a step the test cannot go on without; its output explains a failure. Never give it a secret in `argv`. */
export async function mustRun(argv: readonly string[], options: CommandOptions = {}): Promise<string> {
  const result = await runCommand(argv, options);
  if (result.code !== 0) {
    throw new Error(`${argv.join(" ")} exited with ${result.code}:\n${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout;
}

/** Names the tools from `needed` that are not on PATH. */
export function missingTools(needed: readonly string[]): string[] {
  return needed.filter((tool) => !Bun.which(tool));
}
