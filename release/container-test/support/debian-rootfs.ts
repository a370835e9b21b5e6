/**
 * A minimal Debian root file system for the stand-in base images, made with debootstrap (no image
 * registry is reachable here, Debian's mirror is). Making one takes most of a minute, so it is kept
 * as a tarball in a cache folder named after its recipe: a changed recipe gets a new folder, and a
 * fresh machine (CI) simply makes it once.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { mustRun } from "./commands.ts";

export const CACHE_ROOT = "/tmp/studio-container-test-cache";

/** Everything that decides the result; its hash names the cache folder. */
const RECIPE = {
  suite: "bookworm",
  variant: "minbase",
  mirror: "http://deb.debian.org/debian",
  // Like the slim images: documentation, translations and apt's package lists are not needed to run anything.
  removed: ["usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists"],
} as const;

/** The path of a tarball of the root file system, made now unless the cache has it already. */
export async function debianRootfsTarball(): Promise<string> {
  const folder = join(CACHE_ROOT, `debian-${RECIPE.suite}-${RECIPE.variant}-${recipeHash()}`);
  const tarball = join(folder, "rootfs.tar");
  if (existsSync(tarball)) return tarball;

  await mkdir(folder, { recursive: true });
  const workDir = await mkdtemp(join(folder, "partial-"));
  try {
    const rootfs = join(workDir, "rootfs");
    await mustRun(["debootstrap", `--variant=${RECIPE.variant}`, RECIPE.suite, rootfs, RECIPE.mirror]);
    await Promise.all(RECIPE.removed.map((path) => rm(join(rootfs, path), { recursive: true, force: true })));
    await mustRun(["tar", "--create", "--file", join(workDir, "rootfs.tar"), "--directory", rootfs, "."]);
    // Renamed into place only when complete, so an interrupted run never leaves a broken cache behind.
    await rename(join(workDir, "rootfs.tar"), tarball);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  return tarball;
}

function recipeHash(): string {
  return new Bun.CryptoHasher("sha256").update(JSON.stringify(RECIPE)).digest("hex").slice(0, 12);
}
