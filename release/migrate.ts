#!/usr/bin/env bun
/**
 * Studio's release-phase migration job: Railway's pre-deploy command, `bun release/migrate.ts`.
 * Everything lives in release/src; this file only binds the process to it and sets the exit code.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { hostname, userInfo } from "node:os";
import { fileURLToPath } from "node:url";
import { main } from "./src/cli.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** Bun reports "unknown" for some accounts (root in containers), so the login variables come first. */
function localUserName(): string {
  const { username, uid } = userInfo();
  return process.env.USER ?? process.env.LOGNAME ?? (username === "unknown" ? `uid ${uid}` : username);
}

const exitCode = await main({
  argv: process.argv.slice(2),
  env: process.env,
  sink: {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  },
  stdoutIsTty: process.stdout.isTTY === true,
  stdinIsTty: process.stdin.isTTY === true,
  layout: {
    migrationsDir: `${repoRoot}apps/studio/database/migrations`,
    embeddedDataDir: `${repoRoot}.embedded-postgres`,
  },
  fs: {
    readdir: (dir) => readdir(dir),
    readFile: (path) => readFile(path),
    writeNewFile: (path, text) => writeFile(path, text, { flag: "wx" }),
  },
  localUser: `${localUserName()}@${hostname()}`,
});
process.exit(exitCode);
