/**
 * Runs squawk (the `squawk-cli` binary from npm) over migration files and reads its JSON report.
 * squawk's positions are 0-based lines and byte columns counted in the file as stored (a
 * byte-order mark included); here they become byte offsets into the text the job parses.
 */
import { z } from "zod";
import { MigrateError, ExitCode } from "../shared/errors.ts";
import { LINT_MODE_VARIABLE } from "../shared/config.ts";
import { lineStartByte } from "../files/source-position.ts";
import type { MigrationFile } from "../files/migration-files.ts";

/** Where squawk is, or why it is not there. */
export type SquawkLocation = { readonly binary: string } | { readonly unavailable: string };

export interface ProcessOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** Starts a program with no stdin and collects its output; `signal` kills it. Rejects when it cannot start. */
export type RunProcess = (args: readonly string[], signal?: AbortSignal) => Promise<ProcessOutput>;

/** squawk as the machine has it: where its binary is, and how a program is run there. */
export interface Squawk {
  readonly location: SquawkLocation;
  readonly runProcess: RunProcess;
}

export interface SquawkFinding {
  readonly file: MigrationFile;
  /** Byte offset into `file.source` where squawk points. */
  readonly byteOffset: number;
  readonly rule: string;
  readonly message: string;
  readonly help: string | undefined;
}

export interface SquawkOptions {
  /** Lint as if each file runs inside one transaction, as the job runs transactional files. */
  readonly assumeInTransaction: boolean;
  /** Opt-in rules to run as well. */
  readonly include: readonly string[];
  /** Kills squawk when aborted (SIGTERM, SIGINT, the run's budget): a large file keeps it busy for a while. */
  readonly signal?: AbortSignal | undefined;
}

const ReportSchema = z.array(
  z.object({
    file: z.string(),
    line: z.number().int().min(0),
    column: z.number().int().min(0),
    rule_name: z.string(),
    message: z.string(),
    help: z.string().nullable(),
  }),
);

/**
 * squawk could not lint the files: the gate cannot vouch for them. Exit 4, like any refusal. It is
 * the one failure not in errors.ts, whose import of lint-config.ts (for the relax switch in its
 * fix) would close a circle.
 */
export class SquawkFailedError extends MigrateError {
  readonly exitCode = ExitCode.refused;
  readonly kind = "lint_engine_failed";
  constructor(
    readonly files: readonly string[],
    readonly detail: string,
    binary: string,
  ) {
    super(
      `squawk could not lint ${files.join(", ")}: ${detail}\n    fix: run it by hand to see why: ${binary} --reporter json <file>; to deploy without it for one run, set ${LINT_MODE_VARIABLE}=warn`,
    );
  }

  override attributes(): Record<string, unknown> {
    return { files: this.files };
  }
}

/** One squawk process for all `files`. Throws SquawkFailedError when squawk fails or its report is unreadable. */
export async function runSquawk(binary: string, runProcess: RunProcess, files: readonly MigrationFile[], options: SquawkOptions): Promise<SquawkFinding[]> {
  const byPath = new Map(files.map((file) => [file.path, file]));
  const args = [
    binary,
    "--reporter",
    "json",
    // An empty config file, so a .squawk.toml in some parent folder never changes what is checked.
    "--config",
    "/dev/null",
    ...(options.assumeInTransaction ? ["--assume-in-transaction"] : []),
    ...options.include.map((rule) => `--include=${rule}`),
    ...byPath.keys(),
  ];
  const failed = (detail: string) => new SquawkFailedError(files.map((file) => file.fileName), detail, binary);
  const report = parseReport(await spawnSquawk(runProcess, args, failed, options.signal), failed);
  return report.map((violation) => {
    const file = byPath.get(violation.file);
    if (!file) throw failed(`it reported a file it was not given: ${violation.file}`);
    return {
      file,
      byteOffset: offsetInSource(file, violation.line, violation.column),
      rule: violation.rule_name,
      message: violation.message,
      help: violation.help ?? undefined,
    };
  });
}

type Failure = (detail: string) => SquawkFailedError;

async function spawnSquawk(runProcess: RunProcess, args: string[], failed: Failure, signal: AbortSignal | undefined): Promise<ProcessOutput> {
  try {
    return await runProcess(args, signal);
  } catch (error) {
    throw failed(`cannot start it: ${(error as Error).message}`);
  }
}

/**
 * squawk exits 1 when it found something and 0 when it did not, with its report on stdout; it
 * also exits 1, with only a message on stderr, when it cannot read a file.
 */
function parseReport({ stdout, stderr, exitCode }: ProcessOutput, failed: Failure): z.infer<typeof ReportSchema> {
  const exited = (why: string) => failed(`exit ${exitCode}: ${why}`);
  if (exitCode !== 0 && exitCode !== 1) throw exited(stderr.trim() || stdout.trim() || "no output");
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw exited(stderr.trim() || `its output is not JSON: ${stdout.slice(0, 200)}`);
  }
  const parsed = ReportSchema.safeParse(json);
  if (!parsed.success) throw exited(`its report has an unexpected shape: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/**
 * squawk counts the first line's columns from the start of the stored file, byte-order mark
 * included, while `file.source` starts after it.
 */
function offsetInSource(file: MigrationFile, line: number, byteColumn: number): number {
  const lineStart = lineStartByte(file.source, line + 1);
  if (lineStart === file.source.length) return lineStart;
  const markBytes = line === 0 && file.hadBom ? UTF8_BOM.length : 0;
  return Math.min(lineStart + Math.max(0, byteColumn - markBytes), file.source.length);
}
