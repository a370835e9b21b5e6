/**
 * The file system as the job uses it, on Node's (Bun's) own calls. The entry hands it to the core,
 * which never imports node:fs itself; the in-process test runner hands the same object.
 */
import { lstat, readdir, readFile, readlink, realpath, writeFile } from "node:fs/promises";
import type { JobFileSystem } from "../src/files/migration-files.ts";

export const nodeFileSystem: JobFileSystem = {
  readdir: (dir) => readdir(dir, { withFileTypes: true }),
  lstat: (path) => lstat(path),
  readlink: (path) => readlink(path),
  realpath: (path) => realpath(path),
  readFile: (path) => readFile(path),
  writeNewFile: (path, text) => writeFile(path, text, { flag: "wx" }),
};
