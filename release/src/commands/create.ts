/**
 * `create <name>`: writes the next `NNN_<name>.sql` and its `NNN_rollback.sql` from templates that
 * hold only comments. The job refuses a migration without statements, so a file nobody finished
 * writing can never be applied and recorded by accident. Needs no database.
 */
import { join } from "node:path";
import { ConfigError, ExitCode, RefusedError } from "../shared/errors.ts";
import { errorCode } from "../database/database.ts";
import { COMMAND } from "../shared/invocation.ts";
import type { Logger } from "../shared/log.ts";
import type { JobFileSystem, MigrationFile } from "../files/migration-files.ts";

export interface CreateOptions {
  /** snake_case words: the new file is NNN_<migrationName>.sql. */
  readonly migrationName: string;
}

export interface CreateRun {
  readonly files: readonly MigrationFile[];
  readonly migrationsDir: string;
  readonly fs: JobFileSystem;
  readonly logger: Logger;
}

/** Versions are written with at least this many digits: `001`. */
export const MIN_VERSION_DIGITS = 3;

export async function create(run: CreateRun, { migrationName }: CreateOptions): Promise<ExitCode> {
  const version = nextVersion(run.files);
  const prefix = String(version).padStart(versionDigits(run.files), "0");
  const name = `${prefix}_${migrationName}`;
  const migration = { fileName: `${name}.sql`, text: migrationTemplate(name, prefix) };
  const rollback = { fileName: `${prefix}_rollback.sql`, text: rollbackTemplate(name) };
  const migrationPath = await writeNew(run, migration);
  const rollbackPath = await writeNew(run, rollback);
  run.logger.info("migration_created", `created ${migrationPath} and ${rollbackPath}: write the migration's SQL in the first and the SQL that undoes it in the second`, {
    migration: name,
    version,
    file: migration.fileName,
    rollback_file: rollback.fileName,
    path: migrationPath,
    rollback_path: rollbackPath,
  });
  return ExitCode.success;
}

function nextVersion(files: readonly MigrationFile[]): number {
  return Math.max(0, ...files.map((file) => file.version)) + 1;
}

/** The folder's own width when it pads wider (`0001_…`), so new names sort with the old ones. */
function versionDigits(files: readonly MigrationFile[]): number {
  return Math.max(MIN_VERSION_DIGITS, ...files.map((file) => file.fileName.indexOf("_")));
}

async function writeNew(run: CreateRun, { fileName, text }: { fileName: string; text: string }): Promise<string> {
  const path = join(run.migrationsDir, fileName);
  try {
    await run.fs.writeNewFile(path, text);
  } catch (error) {
    const code = errorCode(error);
    if (code === "EEXIST") {
      throw new RefusedError([{ check: "file", file: fileName, message: "already exists; create never overwrites a file", resolution: "edit the existing file, or move it away and run create again" }]);
    }
    throw new ConfigError([`MIGRATIONS_DIR: cannot write ${path} (${code}); set MIGRATIONS_DIR to a folder you can write to`]);
  }
  return path;
}

function migrationTemplate(name: string, prefix: string): string {
  return `-- ${name}: say here what this migration changes and why.
--
-- Write the SQL below these comments. Until the file has a statement, the job
-- refuses to apply it (exit 4), so an unfinished migration is never recorded.
--
-- The job runs the whole file in one transaction together with its tracking
-- row: do not write BEGIN or COMMIT. For statements that cannot run inside a
-- transaction (CREATE INDEX CONCURRENTLY), make this the first line:
--   -- migrate:no-transaction
-- To keep the file in the repository without applying it yet, make this the
-- first line instead (the reason is required and shows in the deploy log):
--   -- migrate:hold <reason>
--
-- Write the SQL that undoes this migration in ${prefix}_rollback.sql. Once the
-- migration is applied anywhere, never edit this file: put the change in a new
-- one (${COMMAND} create <name>).
`;
}

function rollbackTemplate(name: string): string {
  return `-- Rollback of ${name}: \`${COMMAND} down\` runs this file in one
-- transaction together with removing the migration's tracking row.
--
-- It must restore the schema exactly as it was before ${name} ran:
-- drop what it created, in reverse order, and recreate what it dropped or
-- changed. Until this file has a statement, down refuses to roll ${name} back.
`;
}
