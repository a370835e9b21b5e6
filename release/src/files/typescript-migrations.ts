/**
 * TypeScript migrations: `NNN_name.ts` exporting `up(sql)` and optionally `down(sql)`, for data work
 * SQL expresses badly (batched backfills). `sql` is the migration's postgres.js transaction, the
 * same one that writes the tracking row, so a failure half-way leaves neither.
 */
import type { TransactionSql } from "postgres";
import { RefusedError, type SourceLocation } from "../shared/errors.ts";
import type { MigrationFile } from "./migration-files.ts";

export type MigrationFunction = (sql: TransactionSql) => Promise<unknown>;

export interface TypeScriptMigration {
  readonly up: MigrationFunction;
  readonly down: MigrationFunction | undefined;
}

/** Imports the module and checks its exports; a bad module is refused before anything runs. */
export async function loadTypeScriptMigration(file: MigrationFile): Promise<TypeScriptMigration> {
  let module: Record<string, unknown>;
  try {
    module = (await import(file.path)) as Record<string, unknown>;
  } catch (error) {
    throw refusal(file, `cannot be loaded: ${error instanceof Error ? error.message : String(error)}`, "fix the module so that bun can import it");
  }
  const { up, down } = module;
  if (typeof up !== "function") throw refusal(file, "does not export an up(sql) function", "export async function up(sql) { … } from the file");
  if (down !== undefined && typeof down !== "function") throw refusal(file, "exports down, but not as a function", "export async function down(sql) { … }, or remove it");
  return { up: up as MigrationFunction, down: down as MigrationFunction | undefined };
}

function refusal(file: MigrationFile, message: string, resolution: string): RefusedError {
  return new RefusedError([{ check: "typescript", file: file.fileName, message: `TypeScript migration ${message}`, resolution }]);
}

/** Where in the module a thrown error came from: the first stack frame inside the file. */
export function locateInModule(file: MigrationFile, error: unknown): SourceLocation {
  const stack = error instanceof Error ? (error.stack ?? "") : "";
  const frame = new RegExp(`${escapeRegExp(file.path)}:(\\d+):(\\d+)`).exec(stack);
  const line = frame ? Number(frame[1]) : 1;
  const column = frame ? Number(frame[2]) : 1;
  const sourceLine = file.text.split("\n")[line - 1]?.trim() ?? "";
  return { file: file.fileName, line, column, statement: sourceLine };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
