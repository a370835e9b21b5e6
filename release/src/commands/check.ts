/**
 * `check [--json]`: the lint gate over every SQL migration (rollbacks and TypeScript migrations
 * aside), without a database, for CI. Exit 4 when an error remains; with MIGRATE_LINT=warn errors
 * are reported as warnings and the run passes, saying so.
 */
import { ExitCode } from "../shared/errors.ts";
import { lintMigrations } from "../lint/lint.ts";
import { countFindings } from "../lint/findings.ts";
import { describeLintCounts, lintDocument, lintText, logLintNotices } from "../lint/report.ts";
import type { LintMode } from "../shared/config.ts";
import type { Squawk } from "../lint/squawk.ts";
import type { Logger } from "../shared/log.ts";
import type { MigrationFile, MigrationFileSystem } from "../files/migration-files.ts";
import type { SqlParser } from "../files/sql-statements.ts";
import type { WriteDocument } from "./context.ts";

export interface CheckRun {
  readonly files: readonly MigrationFile[];
  readonly migrationsDir: string;
  /** Reads lint.toml beside the migrations. */
  readonly fs: Pick<MigrationFileSystem, "readFile">;
  readonly logger: Logger;
  readonly writeDocument: WriteDocument;
  readonly loadParser: () => Promise<SqlParser>;
  /** MIGRATE_LINT: "warn" reports errors as warnings for this run. */
  readonly lintMode: LintMode;
  readonly squawk: Squawk;
  /** Aborted by SIGTERM or SIGINT: linting stops. */
  readonly signal: AbortSignal;
}

export interface CheckOptions {
  readonly json: boolean;
}

export async function check(run: CheckRun, options: CheckOptions): Promise<ExitCode> {
  const started = performance.now();
  const report = await lintMigrations(run.files, {
    migrationsDir: run.migrationsDir,
    readFile: (path) => run.fs.readFile(path),
    loadParser: run.loadParser,
    mode: run.lintMode,
    signal: run.signal,
    squawk: run.squawk,
  });
  const text = lintText(report);
  if (options.json) run.writeDocument(JSON.stringify(lintDocument(report)));
  else if (text !== "") run.writeDocument(text);
  logLintNotices(report, run.logger);

  const counts = countFindings(report);
  const blocked = counts.errors > 0 ? " (exit 4: fix each error, or waive it next to its statement with a reason)" : "";
  run.logger.info("run_finished", `check: ${describeLintCounts(report)}${blocked}`, {
    ...counts,
    files: report.linted.length,
    skipped: report.skipped.length,
    duration_ms: Math.round(performance.now() - started),
  });
  return counts.errors > 0 ? ExitCode.refused : ExitCode.success;
}
