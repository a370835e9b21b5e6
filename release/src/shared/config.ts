/**
 * Everything from outside the process (environment variables and command-line flags) is parsed
 * here, once, into a typed Config. Every problem is collected and reported together.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import { duration, durationMs } from "./duration.ts";
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

/** The environment variable of the lint gate's relax switch. */
export const LINT_MODE_VARIABLE = "MIGRATE_LINT";

/**
 * `error` (the default) lets the lint gate's error findings block; `warn` reports them as warnings
 * for this run only, and every line about such a finding names the variable.
 */
export const LintModeSchema = z
  .enum(["error", "warn"], { error: 'must be "warn" (report lint errors as warnings for this run) or "error" (the default)' })
  .default("error");
export type LintMode = z.infer<typeof LintModeSchema>;

/** How one flag is read from the command line, and its line in --help (none: described with its command). */
interface FlagDefinition {
  readonly type: "boolean" | "string";
  readonly short?: string;
  readonly help?: string;
}

/** Every flag the job knows. Which command takes which is said by the command table (commands/table.ts). */
export const FLAGS = {
  embedded: { type: "boolean", help: "run against a local embedded PostgreSQL instead of DATABASE_URL" },
  "public-url": {
    type: "boolean",
    help: "connect with DATABASE_PUBLIC_URL over TLS instead of DATABASE_URL\n(railway run from a laptop, which cannot reach *.railway.internal)",
  },
  "allow-out-of-order": { type: "boolean", help: "apply pending versions lower than the highest applied one" },
  "strict-drift": { type: "boolean", help: "refuse (exit 4) when the schema was changed outside migrations, instead of warning" },
  json: { type: "boolean", help: "print one JSON document on stdout (log lines go to stderr)" },
  "exit-code": { type: "boolean" },
  to: { type: "string" },
  yes: { type: "boolean", help: "confirm down or baseline without a terminal" },
  "rolled-back": { type: "boolean" },
  applied: { type: "boolean" },
  "accept-checksum": { type: "boolean" },
  forget: { type: "boolean" },
  "skip-schema-check": { type: "boolean" },
  help: { type: "boolean", short: "h", help: "show this help" },
  version: { type: "boolean", help: "print the job's version" },
} as const satisfies Record<string, FlagDefinition>;
export type FlagName = keyof typeof FLAGS;
export type FlagValues = { readonly [K in FlagName]?: (typeof FLAGS)[K]["type"] extends "string" ? string : boolean };

/** What a command's options are parsed from: its positional arguments, its flags, and the one variable that adds to a flag. */
export interface CommandInput {
  readonly args: readonly string[];
  readonly flags: FlagValues;
  /** MIGRATE_STRICT_DRIFT=1: the same switch as up's --strict-drift, for a service that always wants it. */
  readonly strictDrift: boolean;
}

/** What config needs of a command: its entry in the command table (commands/table.ts) gives it. */
export interface CommandSyntax {
  readonly name: string;
  /** Its line in --help: how it is called, and what it does (lines after the first are indented). */
  readonly usage: string;
  readonly summary: string;
  /** Lines under the command's own, for its choices: [what, meaning]. */
  readonly details?: readonly (readonly [string, string])[];
  readonly flags: readonly FlagName[];
  /** False for the commands that never touch a database, so need no DATABASE_URL. */
  readonly needsDatabase: boolean;
  /** Its options from the command line; each issue's message is one problem to report. */
  readonly options: z.ZodType<unknown, CommandInput>;
}

/** The command a run was asked for: its table entry and its options, parsed by that entry's schema. */
export interface ParsedCommand<Entry extends CommandSyntax = CommandSyntax> {
  readonly entry: Entry;
  readonly options: unknown;
  /** --json: the command prints one JSON document on stdout, so its log lines all go to stderr. */
  readonly printsDocument: boolean;
}

/** What parseConfig returns for `--help`: nothing else is parsed or required. */
export const HELP = "help";
export const VERSION = "version";

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

export interface Config<Entry extends CommandSyntax = CommandSyntax> {
  readonly command: ParsedCommand<Entry>;
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

/** --help: every command's line from the table, every flag that has a line of its own, the variables. */
export function usageText(commands: readonly CommandSyntax[]): string {
  const column = (left: string, right: string) => {
    const [first = "", ...rest] = right.split("\n");
    const lead = left.length < HELP_COLUMN - 2 ? `  ${left.padEnd(HELP_COLUMN - 2)}${first}` : `  ${left}\n${" ".repeat(HELP_COLUMN)}${first}`;
    return [lead, ...rest.map((line) => `${" ".repeat(HELP_COLUMN)}${line}`)];
  };
  const flags = (Object.entries(FLAGS) as [FlagName, FlagDefinition][])
    .filter(([, flag]) => flag.help)
    .flatMap(([name, flag]) => column(`${flag.short ? `-${flag.short}, ` : ""}--${name}`, flag.help!));
  return [
    "usage: bun release/migrate.ts [command] [flags]",
    "",
    "commands:",
    ...commands.flatMap((command) => [
      ...column(command.usage, command.summary),
      ...(command.details ?? []).flatMap(([what, meaning]) => column(`    ${what}`, meaning)),
    ]),
    "",
    "flags:",
    ...flags,
    "",
    ...wrap(`environment: ${environmentVariables().join(", ")} (see README.md)`, HELP_WIDTH),
  ].join("\n");
}

const HELP_WIDTH = 100;

/** The variables a person sets; Railway's own (RAILWAY_*) are read, not set. */
function environmentVariables(): string[] {
  return Object.keys(EnvSchema.shape).filter((name) => !name.startsWith("RAILWAY_"));
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(" ")) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + word.length + 1 <= width) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(lines.length === 0 ? word : `  ${word}`);
  }
  return lines;
}

/** Where the description column of --help starts. */
const HELP_COLUMN = 31;

const TWO_WAYS_TO_RUN = `DATABASE_URL is not set. Either set it (on Railway it comes from the service's variables:
      DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DB bun release/migrate.ts
    from a laptop use DATABASE_PUBLIC_URL over TLS: railway run bun release/migrate.ts --public-url),
    or run against a local embedded PostgreSQL: bun release/migrate.ts --embedded (what npm start does)`;

export function parseConfig<Entry extends CommandSyntax>(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  stdoutIsTty: boolean,
  layout: InstallLayout,
  commands: readonly Entry[],
): Config<Entry> | typeof HELP | typeof VERSION {
  const problems: string[] = [];
  const flags = parseFlags(argv, problems);
  if (flags?.values.help) return HELP;
  if (flags?.values.version) return VERSION;
  const envResult = EnvSchema.safeParse(env);
  if (!envResult.success) {
    for (const issue of envResult.error.issues) problems.push(`${issue.path.join(".")}: ${issue.message}`);
  }
  const strictDrift = envResult.success && envResult.data.MIGRATE_STRICT_DRIFT;
  const command = flags ? parseCommand(commands, flags, strictDrift, problems) : undefined;
  if (!envResult.success || !flags || !command) throw new ConfigError(problems);
  const vars = envResult.data;

  const choice = { embedded: flags.values.embedded ?? false, publicUrl: flags.values["public-url"] ?? false };
  const database = command.entry.needsDatabase ? parseDatabaseSource(choice, vars, layout, problems) : undefined;
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    command,
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

type ParsedFlags = { readonly positionals: string[]; readonly values: FlagValues };

/** What a person may have meant by a flag the job does not have. */
const NO_DRY_RUN = "there is no dry run of up: plan shows what up would do, statement by statement, and changes nothing";
const FLAG_HINTS: Readonly<Record<string, string>> = { "dry-run": NO_DRY_RUN, dryrun: NO_DRY_RUN };

function parseFlags(argv: readonly string[], problems: string[]): ParsedFlags | undefined {
  // A first, lenient reading finds every flag the job does not know, so each is named with what was meant.
  const { tokens = [] } = parseArgs({ args: [...argv], options: FLAGS, allowPositionals: true, strict: false, tokens: true });
  const unknown = tokens.flatMap((token) => (token.kind === "option" && !Object.hasOwn(FLAGS, token.name) ? [token.rawName] : []));
  if (unknown.length > 0) {
    for (const rawName of unknown) problems.push(unknownFlag(rawName));
    return undefined;
  }
  try {
    const { positionals, values } = parseArgs({ args: [...argv], options: FLAGS, allowPositionals: true, strict: true });
    return { positionals, values };
  } catch (error) {
    problems.push(`${(error as Error).message.split("\n")[0]} (see --help)`);
    return undefined;
  }
}

/** The command named first (up by default), its flags checked against its entry, its options parsed by the entry's schema. */
function parseCommand<Entry extends CommandSyntax>(commands: readonly Entry[], { positionals, values }: ParsedFlags, strictDrift: boolean, problems: string[]): ParsedCommand<Entry> | undefined {
  const [name = "up", ...args] = positionals;
  const entry = commands.find((candidate) => candidate.name === name);
  if (!entry) {
    const meant = closest(name, commands.map((command) => command.name));
    problems.push(`unknown command "${name}"${meant ? ` (did you mean ${meant}?)` : ""} (commands: ${commands.map((command) => command.name).join(", ")}; see --help)`);
    return undefined;
  }
  const given = (Object.keys(values) as FlagName[]).filter((flag) => flag !== "help" && values[flag] !== undefined);
  const foreign = given.filter((flag) => !entry.flags.includes(flag));
  for (const flag of foreign) problems.push(`--${flag} does not apply to the ${name} command`);
  const parsed = entry.options.safeParse({ args, flags: values, strictDrift });
  if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => issue.message));
  if (!parsed.success || foreign.length > 0) return undefined;
  return { entry, options: parsed.data, printsDocument: values.json === true };
}

function unknownFlag(rawName: string): string {
  const name = rawName.replace(/^-+/, "");
  const hint = FLAG_HINTS[name];
  if (hint) return `unknown flag ${rawName}: ${hint}`;
  const meant = closest(name, Object.keys(FLAGS));
  return `unknown flag ${rawName}${meant ? ` (did you mean --${meant}?)` : ""} (see --help)`;
}

/** The candidate within two edits of `word`, the nearest first; none when nothing is that close. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance <= 2 && (!best || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions from `a` to `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

export function parseVersion(text: string | undefined): number | undefined {
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
