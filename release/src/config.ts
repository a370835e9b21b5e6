/**
 * Everything from outside the process (environment variables and command-line flags) is parsed
 * here, once, into a typed Config. Every problem is collected and reported together.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import { duration, durationMs } from "./duration.ts";
import { MIGRATION_NAME_WORDS } from "./migration-files.ts";
import { LintModeSchema, type LintMode } from "./lint/lint-config.ts";
import { writtenCredentials } from "./redact.ts";

export const DEFAULT_MIGRATIONS_TABLE = "platform.schema_migrations";
export const DEFAULT_LOCK_WAIT = "2min";
export const DEFAULT_CONNECT_TIMEOUT = "30s";
export const DEFAULT_EMBEDDED_PORT = 15432;
/** Short on purpose: a migration queued behind a busy table blocks every query queued behind it. */
export const DEFAULT_LOCK_TIMEOUT = "5s";
export const DEFAULT_STATEMENT_TIMEOUT = "10min";
export const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT = "1min";
export const DEFAULT_LOCK_ATTEMPTS = 5;
const RETRY_FIRST_DELAY_MS = 1_000;
const RETRY_MAX_DELAY_MS = 15_000;

export type ResolveAction = "rolled-back" | "applied" | "accept-checksum" | "forget";

export type Command =
  | { readonly name: "up"; readonly allowOutOfOrder: boolean; readonly strictDrift: boolean }
  | { readonly name: "status"; readonly json: boolean; readonly exitCode: boolean }
  | { readonly name: "plan"; readonly json: boolean; readonly allowOutOfOrder: boolean }
  | { readonly name: "rehearse"; readonly json: boolean }
  | { readonly name: "down"; readonly to: number; readonly yes: boolean }
  | { readonly name: "baseline"; readonly to: number; readonly yes: boolean; readonly skipSchemaCheck: boolean }
  | { readonly name: "create"; readonly migrationName: string }
  | { readonly name: "check"; readonly json: boolean }
  | { readonly name: "verify-rollbacks"; readonly json: boolean }
  | { readonly name: "resolve"; readonly version: number; readonly action: ResolveAction };
export type CommandName = Command["name"];

/** What parseConfig returns for `--help`: nothing else is parsed or required. */
export const HELP = "help";

export type DatabaseSource =
  | { readonly kind: "url"; readonly url: string }
  | {
      readonly kind: "embedded";
      readonly dataDir: string;
      readonly port: number;
      /** Set by EMBEDDED_POSTGRES_DIR rather than defaulted: then it is used as given, or refused. */
      readonly dataDirChosen: boolean;
    };

export interface TableName {
  readonly schema: string;
  readonly table: string;
}

/** Who is running: recorded in the tracking table and named in the lock holder's application name. */
export interface Runner {
  readonly deploymentId: string | undefined;
  readonly gitCommit: string | undefined;
  readonly environment: string | undefined;
}

/** How migrations run: the limits each one gets, and how lock contention is retried. */
export interface MigrationPolicy {
  /** lock_timeout for each migration (a file may override it with -- migrate:lock-timeout). */
  readonly lockTimeoutMs: number;
  /** statement_timeout for each statement (a file may override it with -- migrate:statement-timeout). */
  readonly statementTimeoutMs: number;
  /** idle_in_transaction_session_timeout: a TypeScript migration that stalls between queries ends. */
  readonly idleInTransactionTimeoutMs: number;
  /** Attempts at a transactional migration that fails on 55P03 or 40P01, the first included. */
  readonly lockAttempts: number;
  /** Backoff before the second attempt; it doubles each time, with jitter, up to the maximum. */
  readonly retryFirstDelayMs: number;
  readonly retryMaxDelayMs: number;
}

export interface Config {
  readonly command: Command;
  /** Absent only for commands that never touch a database (create). */
  readonly database: DatabaseSource | undefined;
  readonly migrationsDir: string;
  readonly table: TableName;
  readonly logFormat: "text" | "json";
  readonly lockWaitMs: number;
  readonly connectTimeoutMs: number;
  readonly policy: MigrationPolicy;
  /** The whole run's time budget (MIGRATE_RUN_TIMEOUT); none by default. */
  readonly runTimeoutMs: number | undefined;
  /** MIGRATE_LINT: "warn" turns the lint gate's errors into warnings for this run. */
  readonly lintMode: LintMode;
  readonly runner: Runner;
}

/** Defaults that depend on where the job is installed, resolved by the entry point. */
export interface InstallLayout {
  readonly migrationsDir: string;
  readonly embeddedDataDir: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const optionalText = z
  .string()
  .optional()
  .transform((value) => (value?.trim() ? value.trim() : undefined));

const EnvSchema = z.object({
  DATABASE_URL: optionalText,
  DATABASE_PUBLIC_URL: optionalText,
  MIGRATIONS_DIR: optionalText,
  MIGRATIONS_TABLE: z
    .string()
    .default(DEFAULT_MIGRATIONS_TABLE)
    .transform((value, ctx) => {
      const [schema, table, ...rest] = value.split(".");
      if (rest.length > 0 || !schema || !table || !IDENTIFIER.test(schema) || !IDENTIFIER.test(table)) {
        ctx.addIssue({ code: "custom", message: `"${value}" is not schema.table in lower-case identifiers (default ${DEFAULT_MIGRATIONS_TABLE})` });
        return z.NEVER;
      }
      return { schema, table };
    }),
  LOG_FORMAT: z.enum(["text", "json"], { error: 'must be "text" or "json"' }).optional(),
  MIGRATE_LOCK_WAIT: durationMs(DEFAULT_LOCK_WAIT),
  MIGRATE_CONNECT_TIMEOUT: durationMs(DEFAULT_CONNECT_TIMEOUT),
  MIGRATE_LOCK_TIMEOUT: durationMs(DEFAULT_LOCK_TIMEOUT),
  MIGRATE_STATEMENT_TIMEOUT: durationMs(DEFAULT_STATEMENT_TIMEOUT),
  MIGRATE_IDLE_IN_TRANSACTION_TIMEOUT: durationMs(DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT),
  MIGRATE_LOCK_ATTEMPTS: z.coerce
    .number({ error: "must be a whole number of attempts" })
    .int({ error: "must be a whole number of attempts" })
    .min(1, { error: "must be at least 1 (1 means no retry)" })
    .max(20, { error: "must be at most 20" })
    .default(DEFAULT_LOCK_ATTEMPTS),
  MIGRATE_RUN_TIMEOUT: duration.optional(),
  MIGRATE_LINT: LintModeSchema,
  MIGRATE_STRICT_DRIFT: z
    .enum(["0", "1", "false", "true"], { error: 'must be "1" (refuse on schema drift) or "0"' })
    .default("0")
    .transform((value) => value === "1" || value === "true"),
  EMBEDDED_POSTGRES_PORT: z.coerce
    .number({ error: "must be a port number" })
    .int()
    .min(1024, { error: "must be a port number from 1024 to 65535" })
    .max(65535, { error: "must be a port number from 1024 to 65535" })
    .default(DEFAULT_EMBEDDED_PORT),
  EMBEDDED_POSTGRES_DIR: optionalText,
  RAILWAY_DEPLOYMENT_ID: optionalText,
  RAILWAY_GIT_COMMIT_SHA: optionalText,
  RAILWAY_ENVIRONMENT_NAME: optionalText,
});

const FLAGS = {
  help: { type: "boolean", short: "h" },
  embedded: { type: "boolean" },
  "public-url": { type: "boolean" },
  "allow-out-of-order": { type: "boolean" },
  "strict-drift": { type: "boolean" },
  json: { type: "boolean" },
  "exit-code": { type: "boolean" },
  to: { type: "string" },
  yes: { type: "boolean" },
  "rolled-back": { type: "boolean" },
  applied: { type: "boolean" },
  "accept-checksum": { type: "boolean" },
  forget: { type: "boolean" },
  "skip-schema-check": { type: "boolean" },
} as const;
type FlagName = keyof typeof FLAGS;

const RESOLVE_ACTIONS = ["rolled-back", "applied", "accept-checksum", "forget"] as const;

/** The flags each command accepts; any other flag given to it is an error, not silently ignored. */
const COMMAND_FLAGS: Record<CommandName, readonly FlagName[]> = {
  up: ["embedded", "public-url", "allow-out-of-order", "strict-drift"],
  status: ["embedded", "public-url", "json", "exit-code"],
  plan: ["embedded", "public-url", "json", "allow-out-of-order"],
  rehearse: ["embedded", "public-url", "json"],
  down: ["embedded", "public-url", "to", "yes"],
  baseline: ["embedded", "public-url", "to", "yes", "skip-schema-check"],
  create: [],
  check: ["json"],
  "verify-rollbacks": ["embedded", "public-url", "json"],
  resolve: ["embedded", "public-url", ...RESOLVE_ACTIONS],
};

/** Commands that never touch a database, so need no DATABASE_URL. */
const NO_DATABASE: ReadonlySet<CommandName> = new Set(["create", "check"]);

function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_FLAGS, name);
}

export const USAGE = `usage: bun release/migrate.ts [command] [flags]

commands:
  up (default)                 apply pending migrations in version order
  status [--json] [--exit-code]
                               every migration the files or the database know, and its state;
                               --exit-code exits 4 when anything is pending, failed or drifted
  plan [--json]                what up would do now, statement by statement, and why it would refuse
  rehearse [--json]            run pending migrations for real in one transaction, then roll it all back
  down --to <version> [--yes]  run the rollback files of applied migrations above <version>, newest first
  baseline --to <version> [--yes] [--skip-schema-check]
                               record migrations up to <version> as applied without running them
                               (adopting a database whose schema was applied by hand), once the live
                               schema matches what they build in a scratch database; --to 0 records
                               nothing; --skip-schema-check adopts without that check (logged and recorded)
  create <name>                write the next NNN_<name>.sql and NNN_rollback.sql
  check [--json]               lint the migration files (no database), as up does before applying
  verify-rollbacks [--json]    in a scratch database, check that every rollback restores the schema exactly
  resolve <version> <action>   settle a migration the job refuses to pass:
      --rolled-back            a migration that failed part-way was undone; retry it on the next run
      --applied                a migration that failed part-way was finished by hand, or one whose row
                               was lost; record it as applied without running it
      --accept-checksum        an applied migration's file was edited on purpose; record its new checksum
      --forget                 an applied migration's file was deleted on purpose; drop its record

flags:
  --embedded                   run against a local embedded PostgreSQL instead of DATABASE_URL
  --public-url                 connect with DATABASE_PUBLIC_URL over TLS instead of DATABASE_URL
                               (railway run from a laptop, which cannot reach *.railway.internal)
  --allow-out-of-order         apply pending versions lower than the highest applied one
  --strict-drift               refuse (exit 4) when the schema was changed outside migrations, instead of warning
  --json                       print one JSON document on stdout (log lines go to stderr)
  --yes                        confirm down or baseline without a terminal
  -h, --help                   show this help

environment: DATABASE_URL, DATABASE_PUBLIC_URL, MIGRATIONS_DIR, MIGRATIONS_TABLE, LOG_FORMAT,
  MIGRATE_LOCK_WAIT, MIGRATE_CONNECT_TIMEOUT, MIGRATE_LOCK_TIMEOUT, MIGRATE_STATEMENT_TIMEOUT,
  MIGRATE_IDLE_IN_TRANSACTION_TIMEOUT, MIGRATE_LOCK_ATTEMPTS, MIGRATE_RUN_TIMEOUT, MIGRATE_LINT, MIGRATE_STRICT_DRIFT,
  EMBEDDED_POSTGRES_PORT, EMBEDDED_POSTGRES_DIR (see README.md)`;

const TWO_WAYS_TO_RUN = `DATABASE_URL is not set. Either set it (on Railway it comes from the service's variables:
      DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DB bun release/migrate.ts
    from a laptop use DATABASE_PUBLIC_URL over TLS: railway run bun release/migrate.ts --public-url),
    or run against a local embedded PostgreSQL: bun release/migrate.ts --embedded (what npm start does)`;

export function parseConfig(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  stdoutIsTty: boolean,
  layout: InstallLayout,
): Config | typeof HELP {
  const problems: string[] = [];
  const flags = parseFlags(argv, problems);
  if (flags?.values.help) return HELP;
  const envResult = EnvSchema.safeParse(env);
  if (!envResult.success) {
    for (const issue of envResult.error.issues) problems.push(`${issue.path.join(".")}: ${issue.message}`);
  }
  const command = flags ? parseCommand(flags.positionals, flags.values, problems) : undefined;
  if (!envResult.success || !flags || !command) throw new ConfigError(problems);
  const vars = envResult.data;

  const choice = { embedded: flags.values.embedded ?? false, publicUrl: flags.values["public-url"] ?? false };
  const database = NO_DATABASE.has(command.name) ? undefined : parseDatabaseSource(choice, vars, layout, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    // MIGRATE_STRICT_DRIFT=1 is the same switch as --strict-drift, for a service that always wants it.
    command: command.name === "up" ? { ...command, strictDrift: command.strictDrift || vars.MIGRATE_STRICT_DRIFT } : command,
    database,
    migrationsDir: vars.MIGRATIONS_DIR ?? layout.migrationsDir,
    table: vars.MIGRATIONS_TABLE,
    logFormat: vars.LOG_FORMAT ?? defaultLogFormat(stdoutIsTty),
    lockWaitMs: vars.MIGRATE_LOCK_WAIT,
    connectTimeoutMs: vars.MIGRATE_CONNECT_TIMEOUT,
    policy: {
      lockTimeoutMs: vars.MIGRATE_LOCK_TIMEOUT,
      statementTimeoutMs: vars.MIGRATE_STATEMENT_TIMEOUT,
      idleInTransactionTimeoutMs: vars.MIGRATE_IDLE_IN_TRANSACTION_TIMEOUT,
      lockAttempts: vars.MIGRATE_LOCK_ATTEMPTS,
      retryFirstDelayMs: RETRY_FIRST_DELAY_MS,
      retryMaxDelayMs: RETRY_MAX_DELAY_MS,
    },
    runTimeoutMs: vars.MIGRATE_RUN_TIMEOUT,
    lintMode: vars.MIGRATE_LINT,
    runner: {
      deploymentId: vars.RAILWAY_DEPLOYMENT_ID,
      gitCommit: vars.RAILWAY_GIT_COMMIT_SHA,
      environment: vars.RAILWAY_ENVIRONMENT_NAME,
    },
  };
}

/** Which database the flags point at: DATABASE_URL unless one of these says otherwise. */
interface DatabaseChoice {
  readonly embedded: boolean;
  readonly publicUrl: boolean;
}

function parseDatabaseSource(
  { embedded, publicUrl }: DatabaseChoice,
  vars: z.infer<typeof EnvSchema>,
  layout: InstallLayout,
  problems: string[],
): DatabaseSource | undefined {
  if (embedded && publicUrl) {
    problems.push("--embedded and --public-url each choose the database; give only one of them");
    return undefined;
  }
  if (embedded) {
    const chosen = vars.EMBEDDED_POSTGRES_DIR;
    return { kind: "embedded", dataDir: chosen ?? layout.embeddedDataDir, port: vars.EMBEDDED_POSTGRES_PORT, dataDirChosen: chosen !== undefined };
  }
  if (publicUrl) return parsePublicUrl(vars.DATABASE_PUBLIC_URL, problems);
  if (!vars.DATABASE_URL) {
    problems.push(TWO_WAYS_TO_RUN);
    return undefined;
  }
  const urlProblem = describeUrlProblem(vars.DATABASE_URL);
  if (urlProblem) {
    problems.push(`DATABASE_URL: ${urlProblem}`);
    return undefined;
  }
  return { kind: "url", url: vars.DATABASE_URL };
}

const PUBLIC_URL_MISSING = `--public-url reads DATABASE_PUBLIC_URL, which is not set. It is a variable of Railway's PostgreSQL service:
      railway run --service <postgres service> bun release/migrate.ts --public-url
    or give the Studio service a reference to it (DATABASE_PUBLIC_URL=\${{Postgres.DATABASE_PUBLIC_URL}}) and run: railway run bun release/migrate.ts --public-url`;

/** The public URL crosses the internet, so the connection must be encrypted (DATABASE_URL stays on the private network). */
function parsePublicUrl(url: string | undefined, problems: string[]): DatabaseSource | undefined {
  if (!url) {
    problems.push(PUBLIC_URL_MISSING);
    return undefined;
  }
  const urlProblem = describeUrlProblem(url);
  if (urlProblem) {
    problems.push(`DATABASE_PUBLIC_URL: ${urlProblem}`);
    return undefined;
  }
  return { kind: "url", url: requireTls(url) };
}

/**
 * Adds `sslmode=require` (encrypt; the certificate is not checked, as Railway's is self-signed) unless
 * the URL already names an sslmode: an operator who wrote `verify-full` or `disable` meant it.
 */
export function requireTls(url: string): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has("sslmode")) return url;
  parsed.searchParams.set("sslmode", "require");
  return parsed.toString();
}

/** Text for a person at a terminal; JSON otherwise, which is what Railway's log parses. */
export function defaultLogFormat(stdoutIsTty: boolean): "text" | "json" {
  return stdoutIsTty ? "text" : "json";
}

type ParsedFlags = { positionals: string[]; values: Partial<{ [K in FlagName]: K extends "to" ? string : boolean }> };

function parseFlags(argv: readonly string[], problems: string[]): ParsedFlags | undefined {
  try {
    const { positionals, values } = parseArgs({ args: [...argv], options: FLAGS, allowPositionals: true, strict: true });
    return { positionals, values };
  } catch (error) {
    problems.push(`${(error as Error).message.split("\n")[0]} (see --help)`);
    return undefined;
  }
}

function parseCommand(positionals: string[], flags: ParsedFlags["values"], problems: string[]): Command | undefined {
  const [name = "up", ...args] = positionals;
  if (!isCommandName(name)) {
    problems.push(`unknown command "${name}" (commands: ${Object.keys(COMMAND_FLAGS).join(", ")}; see --help)`);
    return undefined;
  }
  const given = (Object.keys(flags) as FlagName[]).filter((flag) => flag !== "help" && flags[flag] !== undefined);
  for (const flag of given) if (!COMMAND_FLAGS[name].includes(flag)) problems.push(`--${flag} does not apply to the ${name} command`);
  const before = problems.length;
  const command = buildCommand(name, args, flags, problems);
  return problems.length > before || given.some((flag) => !COMMAND_FLAGS[name].includes(flag)) ? undefined : command;
}

function buildCommand(name: CommandName, args: string[], flags: ParsedFlags["values"], problems: string[]): Command | undefined {
  const noArguments = () => {
    if (args.length > 0) problems.push(`${name} takes no arguments, got "${args.join(" ")}"`);
  };
  switch (name) {
    case "up":
      noArguments();
      return { name, allowOutOfOrder: flags["allow-out-of-order"] ?? false, strictDrift: flags["strict-drift"] ?? false };
    case "status":
      noArguments();
      return { name, json: flags.json ?? false, exitCode: flags["exit-code"] ?? false };
    case "plan":
      noArguments();
      return { name, json: flags.json ?? false, allowOutOfOrder: flags["allow-out-of-order"] ?? false };
    case "rehearse":
    case "check":
    case "verify-rollbacks":
      noArguments();
      return { name, json: flags.json ?? false };
    case "down":
    case "baseline": {
      noArguments();
      const to = parseVersion(flags.to);
      if (to === undefined) problems.push(`${name} needs --to <version>, e.g. ${name} --to 005`);
      if (to === undefined) return undefined;
      const yes = flags.yes ?? false;
      return name === "down" ? { name, to, yes } : { name, to, yes, skipSchemaCheck: flags["skip-schema-check"] ?? false };
    }
    case "create": {
      const [migrationName, ...extra] = args;
      if (!migrationName || extra.length > 0 || !MIGRATION_NAME_WORDS.test(migrationName)) {
        problems.push(`create takes one name in snake_case (lower-case words joined by _), e.g. create add_widgets${migrationName ? `; got "${args.join(" ")}"` : ""}`);
        return undefined;
      }
      return { name, migrationName };
    }
    case "resolve": {
      const [versionText, ...extra] = args;
      const version = parseVersion(versionText);
      const actions = RESOLVE_ACTIONS.filter((action) => flags[action]);
      if (version === undefined || extra.length > 0) problems.push("resolve takes exactly one migration version, e.g. resolve 009 --rolled-back");
      if (actions.length !== 1) problems.push(`resolve needs exactly one of ${RESOLVE_ACTIONS.map((action) => `--${action}`).join(", ")}`);
      return version === undefined || actions.length !== 1 ? undefined : { name, version, action: actions[0]! };
    }
  }
}

function parseVersion(text: string | undefined): number | undefined {
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

const URL_SHAPE = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE";

/** Says what is wrong with a database URL without ever repeating it (it may hold the password). */
export function describeUrlProblem(url: string): string | undefined {
  // The scheme is read by hand: it comes before the credentials, so naming it cannot reveal them.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  if (!scheme) return `not a valid URL; expected ${URL_SHAPE} (special characters in the password must be percent-encoded)`;
  if (!["postgres", "postgresql"].includes(scheme.toLowerCase())) return `the scheme is "${scheme}"; expected ${URL_SHAPE}`;
  const credentials = credentialsProblem(url);
  if (credentials) return credentials;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `not a valid URL; expected ${URL_SHAPE}`;
  }
  if (!parsed.hostname) return `has no host; expected ${URL_SHAPE}`;
  if (parsed.port && Number(parsed.port) === 0) return "has port 0";
  return undefined;
}

/**
 * Characters RFC 3986 allows, as they are, in a URL's user name and password (the password may
 * hold ":" too). Any other must be percent-encoded: left raw, it is read differently by different
 * parsers (WHATWG's URL takes a "/", "?" or "#" as the end of the host and reads the password as a
 * port, a path or a query; libpq splits at the first "@", URL parsers at the last), silently dropped
 * (tabs and newlines), or makes postgres.js throw (a "%" that is not an escape).
 */
const USER_CHARACTERS = /^[A-Za-z0-9\-._~!$&'()*+,;=]$/;
const PASSWORD_CHARACTERS = /^[A-Za-z0-9\-._~!$&'()*+,;=:]$/;
/** Characters that end a URL's authority for some parser: when one is in the credentials, so may be the last "@". */
const DELIMITERS = new Set(["/", "?", "#", "@"]);

/**
 * Refuses a user name or password that is not fully percent-encoded, naming the characters and
 * their encoding, never the text around them. Credentials end at the last "@" of the URL, as URL
 * parsers read them; an "@" later in the URL (database name, parameters) must be %40 for that.
 */
function credentialsProblem(url: string): string | undefined {
  const credentials = writtenCredentials(url);
  if (!credentials) return undefined;
  const problems = [partProblem("user name", credentials.user, USER_CHARACTERS), partProblem("password", credentials.password ?? "", PASSWORD_CHARACTERS)];
  return problems.filter((problem): problem is string => problem !== undefined).join("; ") || undefined;
}

interface Unencoded {
  /** How the message names the character: `"/"`, `a space`. */
  readonly name: string;
  readonly encoding: string;
  readonly delimiter: boolean;
}

function partProblem(part: string, text: string, allowed: RegExp): string | undefined {
  const unencoded = unencodedCharacters(text, allowed);
  if (unencoded.length > 0) {
    const names = listed(unencoded.map((character) => character.name));
    const writing = listed(unencoded.map((character) => `${character.name} as ${character.encoding}`));
    const laterAt = unencoded.some((character) => character.delimiter) ? "; an @ in the database name or a parameter must be written %40 too" : "";
    return `the ${part} holds ${names}, which must be percent-encoded in a URL: write ${writing} (encodeURIComponent does it)${laterAt}`;
  }
  try {
    decodeURIComponent(text);
  } catch {
    return `the ${part}'s percent-encoding does not decode to UTF-8 text: percent-encode the ${part} as a whole (encodeURIComponent does it)`;
  }
  return undefined;
}

/** The characters of `text` that must be percent-encoded, each once, in order of appearance. */
function unencodedCharacters(text: string, allowed: RegExp): Unencoded[] {
  const found = new Map<string, Unencoded>();
  const characters = [...text];
  characters.forEach((character, index) => {
    if (allowed.test(character)) return;
    if (character === "%" && /^[0-9A-Fa-f]{2}$/.test(characters.slice(index + 1, index + 3).join(""))) return;
    const unencoded = describeCharacter(character);
    found.set(unencoded.name, unencoded);
  });
  return [...found.values()];
}

/** Printable ASCII is named as itself; a space, control and non-ASCII characters by their kind, so nothing of the password is printed beyond one character. */
function describeCharacter(character: string): Unencoded {
  const code = character.codePointAt(0)!;
  const hex = `%${code.toString(16).toUpperCase().padStart(2, "0")}`;
  if (code === 0x20) return { name: "a space", encoding: hex, delimiter: false };
  if (code < 0x20 || code === 0x7f) return { name: `a control character (U+${code.toString(16).toUpperCase().padStart(4, "0")})`, encoding: hex, delimiter: false };
  if (code > 0x7f) return { name: "a non-ASCII character", encoding: "its UTF-8 bytes, each as %XX", delimiter: false };
  return { name: `"${character}"`, encoding: hex, delimiter: DELIMITERS.has(character) };
}

/** `a`, `a and b`, `a, b and c`. */
function listed(items: readonly string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}
