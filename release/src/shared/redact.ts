/**
 * Keeps secrets out of every line the job prints and every message it stores: the database
 * passwords of the URLs it was given, and the password literals of its migration files. The logger
 * runs each line through a Redactor, so even an error message from a library that echoes a
 * connection string is safe.
 */

export type Redactor = (text: string) => string;

/**
 * Credentials in any postgres URL, except the literal placeholder of the job's own help texts. The
 * password runs to the last `@` before a space or a quote: URL parsers split a URL's credentials
 * from its host at the last `@`, so an unencoded `@`, `/`, `?` or `#` in a password is masked too.
 */
const URL_CREDENTIALS = /(postgres(?:ql)?:\/\/[^\s:/?#@"]*:)(?!PASSWORD@)[^\s"]*@/gi;
export const REDACTED = "********";

/**
 * The run's secrets: the passwords of the URLs it was given, from the start, and the password
 * literals of migration files, added as the parser finds them. Each is masked as written,
 * percent-decoded, and escaped as in a JSON log line.
 */
export class Secrets {
  /** Longest first, so that a secret holding another is masked whole. */
  #forms: string[] = [];

  constructor(urls: readonly (string | undefined)[]) {
    for (const url of urls) this.add(passwordsOf(url));
  }

  add(secrets: Iterable<string>): void {
    const known = new Set(this.#forms);
    const added = [...secrets].flatMap(spellings).filter((form) => form.length > 0 && !known.has(form));
    if (added.length === 0) return;
    this.#forms = [...new Set([...this.#forms, ...added])].sort((a, b) => b.length - a.length);
  }

  readonly redact: Redactor = (text) => maskAll(text.replace(URL_CREDENTIALS, `$1${REDACTED}@`), this.#forms);
}

/** A redactor for the password inside `url`. */
export function redactorFor(url: string | undefined): Redactor {
  return new Secrets([url]).redact;
}

/** `text` with every occurrence of each secret replaced by ********. */
export function maskAll(text: string, secrets: readonly string[]): string {
  let safe = text;
  for (const secret of secrets) if (secret.length > 0) safe = safe.split(secret).join(REDACTED);
  return safe;
}

function spellings(secret: string): string[] {
  const decoded = safeDecode(secret);
  return [secret, decoded].flatMap((form) => [form, JSON.stringify(form).slice(1, -1)]);
}

/**
 * The password as a URL parser reads it, and as written between `user:` and the last `@`: the two
 * differ exactly when the URL is ambiguous (a `/`, `?` or `#` in the password), and both are masked.
 */
function passwordsOf(url: string | undefined): string[] {
  if (!url) return [];
  const passwords = [writtenCredentials(url)?.password ?? ""];
  try {
    passwords.push(new URL(url).password);
  } catch {
    // Not a URL to WHATWG's parser: the written form above is all there is.
  }
  return passwords.filter((password) => password.length > 0);
}

/** A URL's user and password as written, before any percent-decoding. */
export interface WrittenCredentials {
  readonly user: string;
  readonly password: string | undefined;
}

/**
 * The user and password as written: everything between `scheme://` and the last `@` (where URL
 * parsers end them; libpq ends them at the first), split at the first `:`. Undefined without an `@`.
 */
export function writtenCredentials(url: string): WrittenCredentials | undefined {
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/(.*)@/is.exec(url)?.[1];
  if (userinfo === undefined) return undefined;
  const colon = userinfo.indexOf(":");
  return colon < 0 ? { user: userinfo, password: undefined } : { user: userinfo.slice(0, colon), password: userinfo.slice(colon + 1) };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `user@host:port/database`: how the log names a target, never with the password. */
export function describeTarget(url: string): string {
  const parsed = new URL(url);
  const user = parsed.username ? `${safeDecode(parsed.username)}@` : "";
  const port = parsed.port ? `:${parsed.port}` : "";
  return `${user}${parsed.hostname}${port}${parsed.pathname || "/"}`;
}
