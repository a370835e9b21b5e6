/**
 * Discovery of migration files (SQL, and TypeScript for data work SQL expresses badly): naming,
 * versions, rollback pairing, encoding, checksums and header directives. Everything wrong with the folder is reported at once, before the database is touched.
 *
 * What the folder may hold, entry by entry:
 * - a name ending in `.sql` or `.ts` (any case) is meant as a migration: it must be a valid name and
 *   a regular file the job can read, or a symbolic link to one inside the folder; anything else
 *   (a directory, a dangling or looping link, a link leading out of the folder, an unreadable
 *   file) is refused, in every command;
 * - a near miss, a name that looks like a migration (digits and `_` first) but is not one
 *   (`002_x.sql `, `002_x.psql`, `002_x.sql.bak`), is never applied: commands that run warn about
 *   it, and `check`, the gate in CI, refuses it;
 * - every other name (README.md, lint.toml, hidden files) is not the job's business.
 *
 * A link must stay inside the folder because the deploy image has to hold every migration itself,
 * and a migration's checksum must be of a file the review saw.
 */
import { createHash } from "node:crypto";
import { isAbsolute, join, relative, sep } from "node:path";
import { ConfigError, RefusedError, type Refusal } from "../shared/errors.ts";
import { parseDirectives } from "./directives.ts";
import type { Logger } from "../shared/log.ts";

/** What `lstat` says of an entry; node's `Stats` is one. */
export interface EntryStats {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** An entry of a folder, with its kind as the folder listing gave it (node's `Dirent` is one). */
export interface FolderEntry extends EntryStats {
  readonly name: string;
}

/** The file-system calls discovery needs; passed in so the core never reaches for `fs` itself. */
export interface MigrationFileSystem {
  /** The folder's entries; a kind the file system does not report leaves every `is…()` false. */
  readdir(dir: string): Promise<FolderEntry[]>;
  /** The entry itself, a symbolic link not followed. */
  lstat(path: string): Promise<EntryStats>;
  /** What a symbolic link says it points to, as written in it. */
  readlink(path: string): Promise<string>;
  /** The path with every symbolic link resolved; rejects (ENOENT, ELOOP) when there is no end to it. */
  realpath(path: string): Promise<string>;
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
/** A name the job reads as a migration, and refuses when it is not a valid one. */
const CANDIDATE_NAME = /\.(sql|ts)$/i;
/** A name a person would take for a migration's: a version, then `_`. */
const MIGRATION_LIKE = /^\s*\d+_/;
const UTF8_BOM = [0xef, 0xbb, 0xbf];
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export interface MigrationFolder {
  /** Every migration, sorted by version, its rollback paired. */
  readonly files: MigrationFile[];
  /** The near misses: entries that look like migrations but are not, never applied (check "ignored"). */
  readonly ignored: readonly Refusal[];
}

export interface FolderOptions {
  /** Refuse the near misses along with every other problem (check), instead of returning them to be warned about. */
  readonly refuseIgnored: boolean;
}

/** Reads and validates every migration in `dir`. Throws RefusedError. */
export async function readMigrationFolder(dir: string, fs: MigrationFileSystem, { refuseIgnored }: FolderOptions): Promise<MigrationFolder> {
  const { entries, folder } = await listFolder(dir, fs);
  const ignored = entries.filter(({ name }) => !isCandidate(name) && MIGRATION_LIKE.test(name)).map(({ name }) => nearMiss(name));
  const sources = await Promise.all(entries.filter(({ name }) => isCandidate(name)).map((entry) => readSource(dir, folder, entry, fs)));
  const refusals: Refusal[] = refuseIgnored ? [...ignored] : [];
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
        resolution:
          `if version ${version} was applied and its migration file deleted, put the file back: an applied migration stays in the folder (status shows what the database recorded); ` +
          "otherwise remove the rollback file, or rename it to match its migration's version",
      });
    }
  }
  if (refusals.length > 0) throw new RefusedError(refusals);

  const files = migrations.map((migration) => ({ ...migration, rollback: rollbacks.get(migration.version) })).sort((a, b) => a.version - b.version);
  return { files, ignored: refuseIgnored ? [] : ignored };
}

/** Each near miss, as a warning: it is not applied, and check would refuse it. */
export function warnIgnored(ignored: readonly Refusal[], logger: Logger): void {
  for (const { file, message, resolution } of ignored) {
    logger.warn("file_ignored", `${message}; it is not applied: ${resolution} (check refuses it)`, { file, reason: message });
  }
}

/** The folder's entries, and its real path: what a symbolic link must lead into. */
async function listFolder(dir: string, fs: MigrationFileSystem): Promise<{ entries: FolderEntry[]; folder: string }> {
  let entries: FolderEntry[];
  let folder: string;
  try {
    [entries, folder] = await Promise.all([fs.readdir(dir), fs.realpath(dir)]);
  } catch (error) {
    throw new ConfigError([
      `MIGRATIONS_DIR: cannot read the migrations folder ${dir} (${errnoOf(error)}); set MIGRATIONS_DIR to the folder that holds NNN_name.sql files`,
    ]);
  }
  // Hidden files are editors' and tools' (swap files, .gitkeep), never migrations.
  const visible = entries.filter(({ name }) => !name.startsWith("."));
  return { entries: visible.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), folder };
}

function isCandidate(name: string): boolean {
  return CANDIDATE_NAME.test(name);
}

/** A name that looks like a migration's but is not one: why, and the rename that would make it one. */
function nearMiss(name: string): Refusal {
  const trimmed = name.trim();
  const extension = /\.[^.]*$/.exec(trimmed)?.[0];
  const why =
    trimmed !== name
      ? `its name ${name.startsWith(trimmed) ? "ends in" : "begins with"} whitespace`
      : extension
        ? `ends in ${JSON.stringify(extension)}, and migrations end in .sql or .ts`
        : "has no extension, and migrations end in .sql or .ts";
  const rename = trimmed !== name && (MIGRATION_NAME.test(trimmed) || ROLLBACK_NAME.test(trimmed)) ? ` to ${JSON.stringify(trimmed)}` : "";
  return {
    check: "ignored",
    file: name,
    message: `${JSON.stringify(name)} looks like a migration but is not one: ${why}`,
    resolution: `if it is a migration, rename it${rename}; if not, move it out of the migrations folder`,
  };
}

type LoadedSource = (SqlSource & { readonly raw: Uint8Array }) | { readonly refusal: Refusal };

async function readSource(dir: string, folder: string, entry: FolderEntry, fs: MigrationFileSystem): Promise<LoadedSource> {
  const fileName = entry.name;
  const path = join(dir, fileName);
  const refuse = (problem: EntryProblem): LoadedSource => ({ refusal: { check: "file", file: fileName, ...problem } });
  // The listing says what most entries are; only a link, or an entry of unknown kind, costs an lstat.
  const problem = entry.isFile() ? undefined : await entryProblem(path, folder, fs);
  if (problem) return refuse(problem);
  let raw: Uint8Array;
  try {
    raw = await fs.readFile(path);
  } catch (error) {
    return refuse(cannotRead(error));
  }
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

type EntryProblem = Pick<Refusal, "message" | "resolution">;

/** Why a migration may not be a link that leads out of the folder, or nowhere. */
const SELF_CONTAINED = "the deploy image must hold every migration, and a migration's checksum must be of a file the review saw";
const REPLACE_LINK = `replace the link with the file itself (${SELF_CONTAINED})`;

/**
 * Why the entry is not a file the job may read as a migration, if it is not: a directory, a
 * symbolic link that dangles, loops or leads out of the folder, or something else than a file.
 * A link to a file inside the folder is followed.
 */
async function entryProblem(path: string, folder: string, fs: MigrationFileSystem): Promise<EntryProblem | undefined> {
  let stats: EntryStats;
  try {
    stats = await fs.lstat(path);
  } catch (error) {
    return cannotRead(error);
  }
  if (!stats.isSymbolicLink()) return kindProblem(stats);
  let target: string;
  try {
    target = await fs.realpath(path);
  } catch (error) {
    const code = errnoOf(error);
    if (code === "ELOOP") return { message: "is a symbolic link that never reaches a file (ELOOP)", resolution: REPLACE_LINK };
    if (code !== "ENOENT") return cannotRead(error);
    const written = await fs.readlink(path).catch(() => "a path");
    return { message: `is a symbolic link to ${written}, which does not exist`, resolution: REPLACE_LINK };
  }
  if (!isInside(folder, target)) {
    return { message: `is a symbolic link to ${target}, outside the migrations folder`, resolution: `copy the file into the folder in place of the link (${SELF_CONTAINED})` };
  }
  return fs.lstat(target).then(kindProblem, cannotRead);
}

function kindProblem(stats: EntryStats): EntryProblem | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isDirectory()) return { message: "is a directory, not a migration file", resolution: "move the directory out of the migrations folder: a migration is one file" };
  return { message: "is not a regular file (a socket, a pipe or a device)", resolution: "replace it with the migration file" };
}

function cannotRead(error: unknown): EntryProblem {
  return { message: `cannot be read (${errnoOf(error)})`, resolution: "make it a regular file that the user the job runs as can read (chmod a+r)" };
}

function isInside(folder: string, path: string): boolean {
  const within = relative(folder, path);
  return within !== "" && !isAbsolute(within) && within.split(sep)[0] !== "..";
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

function hasBom(bytes: Uint8Array): boolean {
  return UTF8_BOM.every((byte, i) => bytes[i] === byte);
}
