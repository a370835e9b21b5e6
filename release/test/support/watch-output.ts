/**
 * A running job whose stdout and stderr can both be watched: with --json its log lines go to
 * stderr, and a test that synchronises on a log line must read them there.
 */
import { finish, spawnMigrate, type RunOptions, type RunResult } from "./run-migrate.ts";

export type StreamName = "stdout" | "stderr";

export function watchBothStreams(args: readonly string[], options: RunOptions) {
  const child = spawnMigrate(args, options);
  const text: Record<StreamName, string> = { stdout: "", stderr: "" };
  let ended = 0;
  let wake: () => void = () => undefined;
  const pump = async (name: StreamName, stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text[name] += decoder.decode(chunk, { stream: true });
      wake();
    }
    ended++;
    wake();
  };
  const pumps = Promise.all([pump("stdout", child.stdout), pump("stderr", child.stderr)]);
  return {
    child,
    /** What the job has written to stderr so far. */
    stderrSoFar: () => text.stderr,
    /** Resolves once `stream` satisfies `predicate`, or both streams have ended. */
    async until(stream: StreamName, predicate: (output: string) => boolean): Promise<void> {
      while (!predicate(text[stream]) && ended < 2) await new Promise<void>((resolve) => (wake = resolve));
    },
    async result(): Promise<RunResult> {
      const code = await child.exited;
      await pumps;
      return finish(code, text.stdout, text.stderr);
    },
  };
}
