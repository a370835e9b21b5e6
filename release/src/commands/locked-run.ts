/** What every command that touches the database gets: the files, and a session under the migration lock. */
import type { Sql } from "postgres";
import type { HeldLock } from "../lock.ts";
import type { Logger } from "../log.ts";
import type { MigrationFile } from "../migration-files.ts";
import type { MigrationStorage } from "../storage.ts";

export interface LockedRun {
  readonly files: readonly MigrationFile[];
  /** The session that runs migrations; the lock is held on another one. */
  readonly sql: Sql;
  readonly lock: HeldLock;
  readonly storage: MigrationStorage;
  readonly logger: Logger;
  /** Told which migration is running, so server notices can be attributed to it. */
  readonly onMigration: (name: string | undefined) => void;
}
