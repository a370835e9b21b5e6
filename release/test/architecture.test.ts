/**
 * The layers of docs/architecture.md, held against the code: no import circle anywhere under
 * release/src, and no module importing from a layer above its own.
 */
import { describe, expect, test } from "bun:test";
import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { REPO_ROOT } from "./support/run-migrate.ts";

const SOURCE = join(REPO_ROOT, "release", "src");
const HOST = join(REPO_ROOT, "release", "host");

/** Each layer, and the layers it may import from (itself included). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  cli: ["cli", "commands", "run", "database", "lint", "files", "shared"],
  commands: ["commands", "run", "database", "lint", "files", "shared"],
  run: ["run", "database", "lint", "files", "shared"],
  database: ["database", "files", "shared"],
  lint: ["lint", "files", "shared"],
  files: ["files", "shared"],
  shared: ["shared"],
};

/** Every relative import and re-export, type-only ones included: a module and the modules it names. */
async function importGraph(): Promise<Map<string, string[]>> {
  const files = (await readdir(SOURCE, { recursive: true })).filter((path) => path.endsWith(".ts")).map((path) => join(SOURCE, path));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = await readFile(file, "utf8");
    const targets = [...text.matchAll(/^\s*(?:import|export)[^'"]*?from\s+["'](\.[^"']+)["']/gm)].map((match) => resolve(dirname(file), match[1]!));
    graph.set(file, targets);
  }
  return graph;
}

function layerOf(file: string): string {
  return relative(SOURCE, file).split("/")[0]!;
}

function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    path.push(file);
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === "open") found.push(path.slice(path.indexOf(target)).concat(target).map((step) => relative(SOURCE, step)).join(" -> "));
      else if (!state.has(target)) visit(target);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe("the layers", () => {
  test("every folder under release/src is a layer of docs/architecture.md", async () => {
    const folders = (await readdir(SOURCE, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
    expect(folders.sort()).toEqual(Object.keys(MAY_IMPORT).sort());
    const architecture = await readFile(join(REPO_ROOT, "docs", "architecture.md"), "utf8");
    for (const layer of folders) expect(architecture).toContain(`\`src/${layer}/\``);
  });

  test("docs/architecture.md names every module of release/src and release/host but the command handlers, and only modules that exist", async () => {
    const architecture = await readFile(join(REPO_ROOT, "docs", "architecture.md"), "utf8");
    const paths = (await Promise.all([SOURCE, HOST].map(async (root) => (await readdir(root, { recursive: true })).filter((path) => path.endsWith(".ts"))))).flat();
    const modules = paths.map((path) => basename(path));
    // A command's handler is indexed by the command table, so a new command needs no line here.
    const mapped = paths.filter((path) => !path.startsWith("commands/") || ["commands/table.ts", "commands/context.ts"].includes(path)).map((path) => basename(path));
    expect(mapped.filter((name) => !architecture.includes(`\`${name}\``))).toEqual([]);
    const named = [...architecture.matchAll(/`(?:[\w./-]*\/)?([\w.-]+\.ts)`/g)].map((match) => match[1]!);
    const entryAndTests = ["migrate.ts", "architecture.test.ts"];
    expect(named.filter((name) => !modules.includes(name) && !entryAndTests.includes(name))).toEqual([]);
  });

  test("no import circle", async () => {
    expect(cycles(await importGraph())).toEqual([]);
  });

  test("no module imports from a layer above its own", async () => {
    const climbing = [...(await importGraph())].flatMap(([file, targets]) =>
      targets.filter((target) => !MAY_IMPORT[layerOf(file)]!.includes(layerOf(target))).map((target) => `${relative(SOURCE, file)} -> ${relative(SOURCE, target)}`),
    );
    expect(climbing).toEqual([]);
  });
});

/**
 * The machine, reached directly: the process and its variables, the file system, the operating
 * system, programs. Only the entry and release/host do that; the core gets them passed in.
 */
const MACHINE_ACCESS = /\bprocess\.|["']node:(?:fs|fs\/promises|os|child_process)["']|\bBun\.(?:spawn|spawnSync|file|write|env|argv|resolveSync)\b/;

describe("the host", () => {
  test("no module under release/src reaches the machine itself", async () => {
    const reaching: string[] = [];
    for (const file of (await importGraph()).keys()) {
      const code = (await readFile(file, "utf8")).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      const match = code.match(MACHINE_ACCESS);
      if (match) reaching.push(`${relative(SOURCE, file)}: ${match[0]}`);
    }
    expect(reaching).toEqual([]);
  });

  test("the check catches each way of reaching the machine", () => {
    for (const line of ['process.env.X', 'import { readFile } from "node:fs/promises";', 'import { tmpdir } from "node:os";', "Bun.spawn([])", "Bun.resolveSync(a, b)"]) {
      expect(line).toMatch(MACHINE_ACCESS);
    }
    expect('import { join } from "node:path";').not.toMatch(MACHINE_ACCESS);
  });
});
