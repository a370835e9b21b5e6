/**
 * Keeps the database password out of every line the job prints. The logger runs each line through
 * a Redactor, so even an error message from a library that echoes a connection string is safe.
 */

export type Redactor = (text: string) => string;

/** Credentials in any postgres URL, except the literal placeholder of the job's own help texts. */
const URL_CREDENTIALS = /(postgres(?:ql)?:\/\/[^:/@\s]*:)(?!PASSWORD@)[^@\s]*@/gi;
export const REDACTED = "********";

/** Builds a redactor for the password inside `url` (raw and percent-decoded forms). */
export function redactorFor(url: string | undefined): Redactor {
  const secrets = passwordForms(url).filter((secret) => secret.length > 0);
  return (text) => {
    let safe = text.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
    for (const secret of secrets) safe = safe.split(secret).join(REDACTED);
    return safe;
  };
}

function passwordForms(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const { password } = new URL(url);
    return password ? [password, safeDecode(password)] : [];
  } catch {
    // An unparseable URL: the password is whatever sits between the first ':' after the scheme and the last '@'.
    const match = /^[a-z]+:\/\/[^:/@]*:(.*)@[^@]*$/i.exec(url);
    return match?.[1] ? [match[1], safeDecode(match[1])] : [];
  }
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
