/**
 * Local stand-ins for the Dockerfile's three base images, which no registry here can provide. Each
 * keeps what the Dockerfile and Railway rely on from the real one:
 * - node (`NODE_IMAGE`): node and npm on PATH, on Debian, like node:22-bookworm-slim;
 * - bun (`BUN_IMAGE`): the Bun binary at /usr/local/bin/bun, like oven/bun;
 * - Studio (`STUDIO_IMAGE`): upstream's run configuration (entry point, command, working directory,
 *   port, health check), kept to be compared, as the test never starts Studio; and, like upstream's
 *   standalone build, its own package.json and node_modules in /app, holding decoys that throw when
 *   loaded: the job must never pick up Studio's packages.
 * Only the stand-ins get this machine's CA bundle, which npm needs behind the TLS-intercepting proxy.
 */
import { chmod, copyFile, cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { buildImage, importRootfs, testImageTag } from "./containers.ts";
import { debianRootfsTarball } from "./debian-rootfs.ts";

/** The stand-ins' tags. */
export interface StandIns {
  readonly node: string;
  readonly bun: string;
  readonly studio: string;
}

/** Packages upstream Studio's standalone build also has in /app/node_modules. */
export const STUDIO_DECOY_PACKAGES = ["postgres", "zod"] as const;
export const STUDIO_DECOY_MARKER = "studio-stand-in-decoy";

const CA_BUNDLE = process.env.NODE_EXTRA_CA_CERTS ?? "/etc/ssl/certs/ca-certificates.crt";

export async function buildStandIns(runId: string): Promise<StandIns> {
  const tag = (name: string) => testImageTag(name, runId);
  const debian = tag("debian");
  const work = await mkdtemp(join(tmpdir(), "studio-stand-ins-"));
  try {
    await importRootfs(await debianRootfsTarball(), debian);
    const [node, bun] = await Promise.all([buildNode(work, debian, tag("node")), buildBun(work, tag("bun"))]);
    const studio = await buildStudio(work, node, tag("studio"));
    return { node, bun, studio };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** This machine's node and npm, which run on Debian bookworm as they are. */
async function buildNode(work: string, debian: string, tag: string): Promise<string> {
  const context = join(work, "node");
  const nodeBinary = realpathSync(Bun.which("node")!);
  const npm = join(dirname(dirname(nodeBinary)), "lib", "node_modules", "npm");
  await mkdir(context);
  await copyFile(nodeBinary, join(context, "node"));
  await cp(npm, join(context, "npm"), { recursive: true });
  await copyFile(CA_BUNDLE, join(context, "ca-certificates.crt"));
  await writeExecutable(join(context, "npm-launcher"), '#!/bin/sh\nexec node /usr/local/lib/node_modules/npm/bin/npm-cli.js "$@"\n');
  await writeFile(
    join(context, "Containerfile"),
    `FROM ${debian}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY npm-launcher /usr/local/bin/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
`,
  );
  await buildImage({ context, containerfile: join(context, "Containerfile"), tag });
  return tag;
}

/** The Bun running this test: the version package.json pins. */
async function buildBun(work: string, tag: string): Promise<string> {
  const context = join(work, "bun");
  await mkdir(context);
  await copyFile(process.execPath, join(context, "bun"));
  await writeFile(join(context, "Containerfile"), "FROM scratch\nCOPY bun /usr/local/bin/bun\n");
  await buildImage({ context, containerfile: join(context, "Containerfile"), tag });
  return tag;
}

async function buildStudio(work: string, node: string, tag: string): Promise<string> {
  const context = join(work, "studio");
  const app = join(context, "app");
  await mkdir(join(app, "apps", "studio"), { recursive: true });
  await writeFile(join(app, "apps", "studio", "server.js"), 'throw new Error("the Studio stand-in is never started");\n');
  await writeFile(join(app, "package.json"), JSON.stringify({ name: "studio", private: true, type: "commonjs" }));
  for (const name of STUDIO_DECOY_PACKAGES) await writeDecoyPackage(join(app, "node_modules", name), name);
  await writeFile(
    join(context, "Containerfile"),
    `FROM ${node}
WORKDIR /app
COPY app/ ./
EXPOSE 3000
ENTRYPOINT ["docker-entrypoint.sh"]
HEALTHCHECK --interval=5s --timeout=5s --retries=3 CMD node -e "fetch('http://localhost:3000/api/platform/profile').then((r) => { if (r.status !== 200) throw new Error(r.status) })"
CMD ["node", "apps/studio/server.js"]
`,
  );
  await buildImage({ context, containerfile: join(context, "Containerfile"), tag });
  return tag;
}

async function writeDecoyPackage(folder: string, name: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  const entry = `throw new Error("${STUDIO_DECOY_MARKER}: the release job loaded Studio's own ${name}");\n`;
  await writeFile(join(folder, "package.json"), JSON.stringify({ name, version: "0.0.0", description: STUDIO_DECOY_MARKER, main: "index.js", exports: { ".": { import: "./index.mjs", default: "./index.js" } } }));
  await writeFile(join(folder, "index.js"), entry);
  await writeFile(join(folder, "index.mjs"), entry);
}

async function writeExecutable(path: string, text: string): Promise<void> {
  await writeFile(path, text);
  await chmod(path, 0o755);
}
