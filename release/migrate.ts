#!/usr/bin/env bun
/**
 * Studio's release-phase migration job: Railway's pre-deploy command, `bun release/migrate.ts`.
 * Everything lives in release/src; this file only binds the process to it and sets the exit code.
 */
import { dirname, join } from "node:path";
import { main } from "./src/cli/cli.ts";
import { machineHost } from "./host/host.ts";
import { localUser } from "./host/local-user.ts";
import { ExitCode } from "./src/shared/errors.ts";
import { JOB_NAME, JOB_VERSION } from "./src/shared/version.ts";

/**
 * The job's folder, release/. In the image the job runs as a compiled executable placed there,
 * whose own modules live in Bun's embedded file system (/$bunfs/): then it is the executable's folder.
 */
const compiled = import.meta.dir.startsWith("/$bunfs/");
const installDir = compiled ? dirname(process.execPath) : import.meta.dir;
const repoRoot = join(installDir, "..");


/**
 * SIGTERM (Railway stopping the deploy) and SIGINT (Ctrl-C) cancel the run: the job cancels the
 * running statement, rolls back and releases the lock. If that hangs, the process exits anyway a
 * little before Railway's 5-second grace ends, and PostgreSQL rolls back when the connection drops.
 */
const SIGNAL_EXIT = { SIGTERM: ExitCode.terminated, SIGINT: ExitCode.interrupted } as const;
const FORCED_EXIT_MS = 4_500;
const cancellation = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (cancellation.signal.aborted) process.exit(SIGNAL_EXIT[signal]);
    cancellation.abort({ kind: "signal", signal });
    setTimeout(() => process.exit(SIGNAL_EXIT[signal]), FORCED_EXIT_MS).unref();
  });
}

const exitCode = await main({
  argv: process.argv.slice(2),
  env: process.env,
  sink: {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  },
  stdoutIsTty: process.stdout.isTTY === true,
  stderrIsTty: process.stderr.isTTY === true,
  stdinIsTty: process.stdin.isTTY === true,
  layout: {
    migrationsDir: join(repoRoot, "apps/studio/database/migrations"),
    embeddedDataDir: join(repoRoot, ".embedded-postgres"),
  },
  host: machineHost(installDir),
  localUser: localUser(process.env),
  signal: cancellation.signal,
  runnerVersion: `${JOB_NAME} ${JOB_VERSION} (bun ${Bun.version}${compiled ? ", compiled" : ""})`,
});
process.exit(exitCode);
