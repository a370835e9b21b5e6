/** PLACEHOLDER: to be written for issue 3. */
import type { ExitCode } from "../errors.ts";
import type { Command } from "../config.ts";
import type { Logger } from "../log.ts";
import type { MigrationFile } from "../migration-files.ts";
import type { JobFileSystem } from "../cli.ts";

export type CreateOptions = Extract<Command, { name: "create" }>;

export interface CreateRun {
  readonly files: readonly MigrationFile[];
  readonly migrationsDir: string;
  readonly fs: JobFileSystem;
  readonly logger: Logger;
}

export async function create(_run: CreateRun, _options: CreateOptions): Promise<ExitCode> {
  throw new Error("create is not implemented yet");
}
