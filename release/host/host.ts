/** This machine, as the core reaches it: the entry and the in-process test runner hand a host to main. */
import type { Host } from "../src/cli/environment.ts";
import { startEmbeddedPostgres } from "./embedded-postgres.ts";
import { nodeFileSystem } from "./node-file-system.ts";
import { installedSquawk } from "./squawk-binary.ts";
import { importInstalled } from "./installed-packages.ts";
import type { ParserModule } from "../src/files/sql-statements.ts";

/** `installDir` is the folder the job's packages are found from: release/, where its node_modules is in the image. */
export function machineHost(installDir: string): Host {
  return {
    fs: nodeFileSystem,
    squawk: installedSquawk(installDir),
    // Found on disk, not bundled: its WebAssembly file is read from beside its module.
    parserModule: () => importInstalled<ParserModule>("libpg-query", installDir),
    startEmbeddedPostgres,
  };
}
