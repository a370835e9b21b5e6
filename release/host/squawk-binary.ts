/**
 * squawk on this machine: the binary npm installed for its platform, and the way the lint gate
 * starts a program (Bun's spawn). The entry hands both to the core, which never starts a process.
 */
import { join } from "node:path";
import { installedPackage } from "./installed-packages.ts";
import type { RunProcess, Squawk, SquawkLocation } from "../src/lint/squawk.ts";

/**
 * squawk ships one npm package per platform; package.json installs the linux-x64 one (Railway's).
 * It is looked up from `installDir` (see installed-packages.ts).
 */
export function locateSquawk(installDir: string, platform: string = process.platform, arch: string = process.arch): SquawkLocation {
  const packageName = `@squawk-cli/${platform}-${arch}`;
  const folder = installedPackage(packageName, installDir);
  if (folder) return { binary: join(folder, "bin", "squawk") };
  return {
    unavailable: `squawk has no binary installed for ${platform}-${arch} (${packageName} is not in node_modules; package.json installs only @squawk-cli/linux-x64), so only the job's own rules ran`,
  };
}

export const runProcess: RunProcess = async (args, signal) => {
  const child = Bun.spawn([...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore", ...(signal ? { signal } : {}) });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { stdout, stderr, exitCode };
};

/** Located on first use: a run that lints nothing never looks for it. */
export function installedSquawk(installDir: string): Squawk {
  let location: SquawkLocation | undefined;
  return {
    get location() {
      return (location ??= locateSquawk(installDir));
    },
    runProcess,
  };
}
