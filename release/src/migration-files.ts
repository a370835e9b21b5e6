/**
 * Discovery of migration files (SQL, and TypeScript for data work SQL expresses badly): naming,
 * versions, rollback pairing, encoding, checksums and header directives. Everything wrong with the folder is reported at once, before the database is touched.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ConfigError, RefusedError, type Refusal } from "./errors.ts";
import { parseDirectives } from "./directives.ts";

/** The file-system calls discovery needs; passed in so the core never reaches for `fs` itself. */
export interface MigrationFileSystem {
  readdir(dir: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
}

/** The file-system calls of the job: reading migrations, and `create` writing new ones. */
export interface JobFileSystem extends MigrationFileSystem {
  /** Writes a new file; fails if it exists already. */
  writeNewFile(path: string, text: string): Promise<void>;
}

export interface SqlSource {
  readonly fileName: string;
  readonly path: string;
  /** The UTF-8 bytes PostgreSQL will see (a byte-order mark, if any, removed). */
  readonly source: Uint8Array;
  readonly text: string;
  /** The file began with a byte-order mark: tools that read the file itself (squawk) count its bytes in first-line columns. */
  readonly hadBom: boolean;
}

export type MigrationLanguage = "sql" | "typescript";

export interface MigrationFile extends SqlSource {
  readonly version: number;
  /** File name without its extension, e.g. `001_create_platform_schema`: the migration's identity. */
  readonly name: string;
  /** `NNN_name.sql`, or `NNN_name.ts` exporting `up(sql)` (and optionally `down(sql)`). */
  readonly language: MigrationLanguage;
  /** sha256 of the file's bytes, hex. */
  readonly checksum: string;
  readonly transactional: boolean;
  readonly holdReason: string | undefined;
  /** Per-file overrides from `-- migrate:lock-timeout` / `-- migrate:statement-timeout`. */
  readonly lockTimeoutMs: number | undefined;
  readonly statementTimeoutMs: number | undefined;
  readonly rollback: SqlSource | undefined;
}

/** The words of a migration name after its version: lower-case snake_case. */
export const MIGRATION_NAME_WORDS = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
const MIGRATION_NAME = new RegExp(`^(\\d{3,15})_(${MIGRATION_NAME_WORDS.source.slice(1, -1)})\\.(sql|ts)$`);
const ROLLBACK_NAME = /^(\d{3,15})_rollback\.sql$/;
const UTF8_BOM = [0xef, 0xbb, 0xbf];
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reads and validates every migration in `dir`, sorted by version. Throws RefusedError. */
export async function readMigrationFiles(dir: string, fs: MigrationFileSystem): Promise<MigrationFile[]> {
  const entries = await listMigrationFiles(dir, fs);
  const sources = await Promise.all(entries.map((fileName) => readSource(dir, fileName, fs)));
  const refusals: Refusal[] = [];
  const rollbacks = new Map<number, SqlSource>();
  const migrations: MigrationFile[] = [];
  const byVersion = new Map<number, string>();

  for (const loaded of sources) {
    if ("refusal" in loaded) {
      refusals.push(loaded.refusal);
      continue;
    }
    const { fileName } = loaded;
    const rollbackMatch = ROLLBACK_NAME.exec(fileName);
    const migrationMatch = MIGRATION_NAME.exec(fileName);
    if (rollbackMatch) {
      rollbacks.set(Number(rollbackMatch[1]), loaded);
      continue;
    }
    if (!migrationMatch) {
      refusals.push({
        check: "file",
        file: fileName,
        message: "malformed migration file name",
        resolution: "rename it to NNN_snake_case_name.sql or .ts (three or more digits, lower-case words joined by _), or NNN_rollback.sql for a rollback",
      });
      continue;
    }
    const version = Number(migrationMatch[1]);
    const clash = byVersion.get(version);
    if (clash) {
      refusals.push({
        check: "file",
        file: fileName,
        message: `duplicate version ${version}: ${clash} has it too`,
        resolution: "give one of the two files the next free version number",
      });
      continue;
    }
    byVersion.set(version, fileName);
    const language: MigrationLanguage = migrationMatch[3] === "ts" ? "typescript" : "sql";
    const { directives, refusals: directiveRefusals } = parseDirectives(fileName, loaded.text, language === "sql" ? "--" : "//");
    refusals.push(...directiveRefusals);
    if (language === "typescript" && !directives.transactional) {
      refusals.push({
        check: "directive",
        file: fileName,
        message: "TypeScript migrations always run in one transaction with their tracking row",
        resolution: "remove the migrate:no-transaction line, or write the migration as SQL",
      });
    }
    const { raw, ...source } = loaded;
    migrations.push({
      ...source,
      version,
      language,
      name: fileName.slice(0, fileName.lastIndexOf(".")),
      checksum: createHash("sha256").update(raw).digest("hex"),
      transactional: directives.transactional,
      holdReason: directives.holdReason,
      lockTimeoutMs: directives.lockTimeoutMs,
      statementTimeoutMs: directives.statementTimeoutMs,
      rollback: undefined,
    });
  }

  for (const [version, rollback] of rollbacks) {
    if (!byVersion.has(version)) {
      refusals.push({
        check: "file",
        file: rollback.fileName,
        message: `rollback without its migration: no migration has version ${version}`,
        resolution: "remove the rollback file or rename it to match its migration's version",
      });
    }
  }
  if (refusals.length > 0) throw new RefusedError(refusals);

  return migrations
    .map((migration) => ({ ...migration, rollback: rollbacks.get(migration.version) }))
    .sort((a, b) => a.version - b.version);
}

async function listMigrationFiles(dir: string, fs: MigrationFileSystem): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    throw new ConfigError([
      `MIGRATIONS_DIR: cannot read the migrations folder ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)}); set MIGRATIONS_DIR to the folder that holds NNN_name.sql files`,
    ]);
  }
  return names.filter((name) => /\.(sql|ts)$/i.test(name) && !name.startsWith(".")).sort();
}

type LoadedSource = (SqlSource & { readonly raw: Uint8Array }) | { readonly refusal: Refusal };

async function readSource(dir: string, fileName: string, fs: MigrationFileSystem): Promise<LoadedSource> {
  const path = join(dir, fileName);
  const raw = await fs.readFile(path);
  const hadBom = hasBom(raw);
  const source = hadBom ? raw.subarray(UTF8_BOM.length) : raw;
  let text: string;
  try {
    text = strictUtf8.decode(source);
  } catch {
    return { refusal: { check: "file", file: fileName, message: "not valid UTF-8", resolution: "re-save the file as UTF-8" } };
  }
  if (text.trim() === "") {
    return { refusal: { check: "file", file: fileName, message: "the file is empty", resolution: "write the migration's SQL in it, or delete it" } };
  }
  return { fileName, path, source, text, hadBom, raw };
}

function hasBom(bytes: Uint8Array): boolean {
  return UTF8_BOM.every((byte, i) => bytes[i] === byte);
}
