/**
 * The job run at a real terminal, as an operator runs it: util-linux `script` gives it a
 * pseudo-terminal as its controlling terminal, so stdin is a TTY (down and baseline pause for
 * Ctrl-C), and a Ctrl-C typed into it reaches the job as the line discipline delivers it: SIGINT
 * to the foreground process group.
 */
import { tmpdir } from "node:os";
import { ENTRY, childEnv, finish, type RunOptions, type RunResult } from "./run-migrate.ts";

export interface TerminalRun {
  /** Resolves once the terminal has shown `text`, or the job has ended. */
  until(text: string): Promise<void>;
  /** Types into the terminal, as a person would. */
  type(keys: string): void;
  result(): Promise<RunResult>;
}

export const CTRL_C = "\x03";

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export function runAtTerminal(args: readonly string[], options: RunOptions): TerminalRun {
  const command = [process.execPath, ENTRY, ...args].map(shellQuote).join(" ");
  // -e: script exits with the job's own exit code; -f: output is passed on as it comes.
  const child = Bun.spawn(["script", "--quiet", "--return", "--flush", "--command", command, "/dev/null"], {
    cwd: tmpdir(),
    env: childEnv(options),
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  let screen = "";
  let ended = false;
  let wake: () => void = () => undefined;
  const pump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      screen += decoder.decode(chunk, { stream: true });
      wake();
    }
    ended = true;
    wake();
  })();
  return {
    async until(text) {
      while (!screen.includes(text) && !ended) await new Promise<void>((resolve) => (wake = resolve));
    },
    type(keys) {
      child.stdin.write(keys);
      child.stdin.flush();
    },
    async result() {
      const code = await child.exited;
      await pump;
      // A terminal ends lines with CRLF, and both of the job's streams arrive on it as one text.
      return finish(code, screen.replaceAll("\r\n", "\n"), "");
    },
  };
}
