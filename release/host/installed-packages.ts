/**
 * Packages as npm installed them, found the way Node.js finds them: in node_modules at `from` or in
 * a folder above. The compiled job cannot ask Bun's resolver, which inside an executable looks only
 * at the modules built into it; importing a file by its absolute path still works there.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** The folder of package `name`, or undefined when no node_modules at or above `from` has it. */
export function installedPackage(name: string, from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === dirname(dir)) return undefined;
  }
}

/**
 * Imports package `name`: through Bun's resolver when it can see the package (a checkout, so the
 * module is the one every other import of it gets), else its ES module entry (its `module` field,
 * else `main`) from the folder found above.
 */
export async function importInstalled<T>(name: string, from: string): Promise<T> {
  const resolved = resolvedByBun(name, from);
  if (resolved) return (await import(resolved)) as T;
  const dir = installedPackage(name, from);
  if (!dir) throw new Error(`cannot find the package ${name} in a node_modules folder at or above ${from}: run npm ci`);
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { module?: string; main?: string };
  return (await import(join(dir, manifest.module ?? manifest.main ?? "index.js"))) as T;
}

function resolvedByBun(name: string, from: string): string | undefined {
  try {
    return Bun.resolveSync(name, from);
  } catch {
    return undefined;
  }
}
