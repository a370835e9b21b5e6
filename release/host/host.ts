/** This machine, as the core reaches it: the entry and the in-process test runner hand the same host to main. */
import type { Host } from "../src/cli/environment.ts";
import { startEmbeddedPostgres } from "./embedded-postgres.ts";
import { nodeFileSystem } from "./node-file-system.ts";
import { installedSquawk } from "./squawk-binary.ts";

export const machineHost: Host = { fs: nodeFileSystem, squawk: installedSquawk(), startEmbeddedPostgres };
