#!/usr/bin/env bun
/**
 * What `release/migrate.ts` is in the Docker image: the Dockerfile puts this file there, beside
 * the job compiled when the image was built (`npm run build:job`, Bun's bytecode executable).
 * Railway runs `bun release/migrate.ts`; this hands the process over to the compiled job with
 * execve, so the job keeps this process's pid, arguments, environment, terminal and signals, and
 * its exit status is the deploy's. The compiled form starts in about a fifth of the time Bun takes
 * to load the sources.
 */
import { join } from "node:path";

const compiled = join(import.meta.dir, "migrate-compiled");
try {
  // Bun has execve (Node.js since 23.11); its type is optional in @types/node.
  process.execve!(compiled, [compiled, ...process.argv.slice(2)], process.env);
} catch (error) {
  process.stderr.write(`cannot start the compiled migration job ${compiled}: ${(error as Error).message}; build it with npm run build:job, or run the sources with bun release/migrate.ts in a checkout\n`);
  process.exit(1);
}
