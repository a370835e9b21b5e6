/**
 * What the entry hands to `main`: the invocation (argv, env, terminals, signals) and the host, the
 * only way the core reaches the machine (files, programs, a local PostgreSQL). The core never
 * reads process, node:fs or node:os itself; tests hand it the same host with their own invocation.
 */
import type { InstallLayout } from "../shared/config.ts";
import type { LogSink } from "../shared/log.ts";
import type { JobFileSystem } from "../files/migration-files.ts";
import type { Squawk } from "../lint/squawk.ts";
import type { ParserModule } from "../files/sql-statements.ts";

export interface Environment {
  readonly argv: readonly string[];
  readonly env: Record<string, string | undefined>;
  readonly sink: LogSink;
  readonly stdoutIsTty: boolean;
  /** Whether errors and warnings reach a terminal: their level is then coloured, unless NO_COLOR says not to. */
  readonly stderrIsTty: boolean;
  /** Whether a person can answer at a terminal (down and baseline wait for Ctrl-C there). */
  readonly stdinIsTty: boolean;
  readonly layout: InstallLayout;
  readonly host: Host;
  /** `user@host` of whoever runs the job outside Railway. */
  readonly localUser: string;
  /** Aborted with a CancelReason when the process receives SIGTERM or SIGINT. */
  readonly signal: AbortSignal;
  /** `studio-release-migrations 0.1.0 (bun 1.4.4)`, recorded in the run history. */
  readonly runnerVersion: string;
}

export interface Host {
  readonly fs: JobFileSystem;
  readonly squawk: Squawk;
  /** Loads the SQL parser's package (libpg-query) from where it is installed. */
  readonly parserModule: () => Promise<ParserModule>;
  readonly startEmbeddedPostgres: StartEmbeddedPostgres;
}

/**
 * Starts (initialising once) a local PostgreSQL with its data in `wanted`, or in a fallback folder
 * when the server's user cannot reach it and the folder was not chosen by the operator.
 */
export type StartEmbeddedPostgres = (wanted: string, port: number, wantedWasChosen: boolean) => Promise<EmbeddedServer>;

export interface EmbeddedServer {
  readonly url: string;
  /** Where the data is: the folder asked for, or the fallback when the postgres user cannot reach it. */
  readonly dataDir: string;
  /** Set when the default folder could not be used, saying why. */
  readonly fallbackReason: string | undefined;
  stop(): Promise<void>;
}
