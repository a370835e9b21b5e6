/**
 * Preloaded by bunfig.toml before any test file: the test process's shared PostgreSQL (see
 * useTestServer) is stopped, and its data folder removed, once the last file has run.
 */
import { stopSharedServerAfterAllFiles } from "./postgres.ts";

stopSharedServerAfterAllFiles();
