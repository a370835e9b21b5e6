/**
 * Every command, once: its name, its --help line, the flags it takes, how its options are parsed
 * (zod, so every problem is reported together), what it needs to run (no database, a server, a
 * session to read, or the migration lock), whether the run history records it, and its handler.
 * Config derives the flag checks and the usage text from this table, and cli.ts dispatches on it:
 * a new command is one entry here and its handler file.
 */
import { z } from "zod";
import type { ExitCode } from "../shared/errors.ts";
import { parseVersion, type CommandInput, type CommandSyntax, type FlagName, type ResolveAction } from "../shared/config.ts";
import { MIGRATION_NAME_WORDS } from "../files/migration-files.ts";
import { up } from "./up.ts";
import { status } from "./status.ts";
import { plan } from "./plan.ts";
import { rehearse } from "./rehearse.ts";
import { down } from "./down.ts";
import { baseline } from "./baseline.ts";
import { create } from "./create.ts";
import { check } from "./check.ts";
import { verifyRollbacks } from "./verify-rollbacks.ts";
import { resolve } from "./resolve.ts";
import type { FilesRun, LockedRun, ReadOnlyRun } from "./context.ts";
import type { VerifyRun } from "./verify-rollbacks.ts";

/** What each kind of command is given to run with. */
export interface RunsByNeed {
  /** Only the migration files: no database at all. */
  readonly files: FilesRun;
  /** A database server of its own to work on (a scratch database), never the target's sessions. */
  readonly server: VerifyRun;
  /** A session on the target, read-only. */
  readonly read: ReadOnlyRun;
  /** Both sessions, with the migration lock held: it may change the database or run migration SQL. */
  readonly locked: LockedRun;
}
export type Need = keyof RunsByNeed;

export interface CommandEntry<N extends Need = Need> extends CommandSyntax {
  readonly needs: N;
  /** Recorded in the run history: the commands that change the database. */
  readonly recorded: boolean;
  /** The command as the run history names it, with any flag that relaxed a check. */
  readonly recordedAs: (options: unknown) => string;
  /** Refuses the folder's near-miss names (002_x.sql.bak) rather than warning about them: the command that checks the folder for CI. */
  readonly refusesIgnoredFiles: boolean;
  /** Runs the handler with options this entry's own schema produced. */
  readonly invoke: (run: RunsByNeed[N], options: unknown) => Promise<ExitCode>;
}

/** An entry of any kind: `needs` tells which, and what its `invoke` takes. */
export type AnyCommandEntry = { readonly [N in Need]: CommandEntry<N> }[Need];

interface Definition<N extends Need, Options> {
  readonly name: string;
  readonly usage?: string;
  readonly summary: string;
  readonly details?: CommandSyntax["details"];
  readonly flags: readonly FlagName[];
  readonly needs: N;
  readonly recorded?: boolean;
  readonly refusesIgnoredFiles?: boolean;
  readonly options: z.ZodType<Options, CommandInput>;
  readonly recordedAs?: (options: Options) => string;
  readonly handler: (run: RunsByNeed[N], options: Options) => Promise<ExitCode>;
}

function command<N extends Need, Options>(definition: Definition<N, Options>): CommandEntry<N> {
  const { handler, recordedAs } = definition;
  return {
    name: definition.name,
    usage: definition.usage ?? definition.name,
    summary: definition.summary,
    ...(definition.details ? { details: definition.details } : {}),
    flags: definition.flags,
    needsDatabase: definition.needs !== "files",
    options: definition.options,
    needs: definition.needs,
    recorded: definition.recorded ?? false,
    refusesIgnoredFiles: definition.refusesIgnoredFiles ?? false,
    // The options reach here only from this entry's own schema, so they are its Options.
    recordedAs: (options) => (recordedAs ? recordedAs(options as Options) : definition.name),
    invoke: (run, options) => handler(run, options as Options),
  };
}

const DATABASE_FLAGS = ["embedded", "public-url"] as const satisfies readonly FlagName[];
const RESOLVE_ACTIONS = ["rolled-back", "applied", "accept-checksum", "forget"] as const satisfies readonly ResolveAction[];

/** The options of a command from its input; `read` says each problem through `problem`. */
function options<Options>(read: (input: CommandInput, problem: (message: string) => void) => Options | undefined) {
  return z.custom<CommandInput>().transform((input, context) => {
    const problem = (message: string) => context.addIssue({ code: "custom", message });
    const parsed = read(input, problem);
    return parsed === undefined ? z.NEVER : parsed;
  });
}

function noArguments(name: string, { args }: CommandInput, problem: (message: string) => void): void {
  if (args.length > 0) problem(`${name} takes no arguments, got "${args.join(" ")}"`);
}

function versionFlag(name: string, { flags }: CommandInput, problem: (message: string) => void): number | undefined {
  const to = parseVersion(flags.to);
  if (to === undefined) problem(`${name} needs --to <version>, e.g. ${name} --to 005`);
  return to;
}

/** --json alone: every command that prints one document and takes nothing else. */
function jsonOnly(name: string) {
  return options((input, problem) => {
    noArguments(name, input, problem);
    return { json: input.flags.json === true };
  });
}

export const COMMANDS: readonly AnyCommandEntry[] = [
  command({
    name: "up",
    usage: "up (default)",
    summary: "apply pending migrations in version order",
    flags: [...DATABASE_FLAGS, "allow-out-of-order", "strict-drift"],
    needs: "locked",
    recorded: true,
    options: options((input, problem) => {
      noArguments("up", input, problem);
      return { allowOutOfOrder: input.flags["allow-out-of-order"] === true, strictDrift: input.flags["strict-drift"] === true || input.strictDrift };
    }),
    handler: up,
  }),
  command({
    name: "status",
    usage: "status [--json] [--exit-code]",
    summary: "every migration the files or the database know, and its state;\n--exit-code exits 4 when anything is pending, failed or drifted",
    flags: [...DATABASE_FLAGS, "json", "exit-code"],
    needs: "read",
    options: options((input, problem) => {
      noArguments("status", input, problem);
      return { json: input.flags.json === true, exitCode: input.flags["exit-code"] === true };
    }),
    handler: status,
  }),
  command({
    name: "plan",
    usage: "plan [--json]",
    summary: "what up would do now, statement by statement, and why it would refuse",
    flags: [...DATABASE_FLAGS, "json", "allow-out-of-order"],
    needs: "read",
    options: options((input, problem) => {
      noArguments("plan", input, problem);
      return { json: input.flags.json === true, allowOutOfOrder: input.flags["allow-out-of-order"] === true };
    }),
    handler: plan,
  }),
  command({
    name: "rehearse",
    usage: "rehearse [--json]",
    summary: "run pending migrations for real in one transaction, then roll it all back",
    flags: [...DATABASE_FLAGS, "json"],
    needs: "locked",
    options: jsonOnly("rehearse"),
    handler: rehearse,
  }),
  command({
    name: "down",
    usage: "down --to <version> [--yes]",
    summary: "run the rollback files of applied migrations above <version>, newest first",
    flags: [...DATABASE_FLAGS, "to", "yes"],
    needs: "locked",
    recorded: true,
    options: options((input, problem) => {
      noArguments("down", input, problem);
      const to = versionFlag("down", input, problem);
      return to === undefined ? undefined : { to, yes: input.flags.yes === true };
    }),
    handler: down,
  }),
  command({
    name: "baseline",
    usage: "baseline --to <version> [--yes] [--skip-schema-check]",
    summary:
      "record migrations up to <version> as applied without running them\n(adopting a database whose schema was applied by hand), once the live\n" +
      "schema matches what they build in a scratch database; --to 0 records\nnothing; --skip-schema-check adopts without that check (logged and recorded)",
    flags: [...DATABASE_FLAGS, "to", "yes", "skip-schema-check"],
    needs: "locked",
    recorded: true,
    options: options((input, problem) => {
      noArguments("baseline", input, problem);
      const to = versionFlag("baseline", input, problem);
      return to === undefined ? undefined : { to, yes: input.flags.yes === true, skipSchemaCheck: input.flags["skip-schema-check"] === true };
    }),
    recordedAs: (options) => (options.skipSchemaCheck ? "baseline --skip-schema-check" : "baseline"),
    handler: baseline,
  }),
  command({
    name: "create",
    usage: "create <name>",
    summary: "write the next NNN_<name>.sql and NNN_rollback.sql",
    flags: [],
    needs: "files",
    options: options(({ args }, problem) => {
      const [migrationName, ...extra] = args;
      if (migrationName && extra.length === 0 && MIGRATION_NAME_WORDS.test(migrationName)) return { migrationName };
      problem(`create takes one name in snake_case (lower-case words joined by _), e.g. create add_widgets${migrationName ? `; got "${args.join(" ")}"` : ""}`);
      return undefined;
    }),
    handler: (run, options) => create(run, options),
  }),
  command({
    name: "check",
    usage: "check [--json]",
    summary: "lint the migration files (no database), as up does before applying",
    flags: ["json"],
    needs: "files",
    refusesIgnoredFiles: true,
    options: jsonOnly("check"),
    handler: (run, options) => check(run, options),
  }),
  command({
    name: "verify-rollbacks",
    usage: "verify-rollbacks [--json]",
    summary: "in a scratch database, check that every rollback restores the schema exactly",
    flags: [...DATABASE_FLAGS, "json"],
    needs: "server",
    options: jsonOnly("verify-rollbacks"),
    handler: verifyRollbacks,
  }),
  command({
    name: "resolve",
    usage: "resolve <version> <action>",
    summary: "settle a migration the job refuses to pass:",
    details: [
      ["--rolled-back", "a migration that failed part-way was undone; retry it on the next run"],
      ["--applied", "a migration that failed part-way was finished by hand, or one whose row\nwas lost; record it as applied without running it"],
      ["--accept-checksum", "an applied migration's file was edited on purpose; record its new checksum"],
      ["--forget", "an applied migration's file was deleted on purpose; drop its record"],
    ],
    flags: [...DATABASE_FLAGS, ...RESOLVE_ACTIONS],
    needs: "locked",
    recorded: true,
    options: options(({ args, flags }, problem) => {
      const [versionText, ...extra] = args;
      const version = parseVersion(versionText);
      const actions = RESOLVE_ACTIONS.filter((action) => flags[action]);
      if (version === undefined || extra.length > 0) problem("resolve takes exactly one migration version, e.g. resolve 009 --rolled-back");
      if (actions.length !== 1) problem(`resolve needs exactly one of ${RESOLVE_ACTIONS.map((action) => `--${action}`).join(", ")}`);
      return version === undefined || extra.length > 0 || actions.length !== 1 ? undefined : { version, action: actions[0]! };
    }),
    handler: resolve,
  }),
];
