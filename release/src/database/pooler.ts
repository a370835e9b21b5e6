/**
 * Refusing connection poolers. A pooler that speaks the PostgreSQL protocol itself (PgBouncer,
 * Supavisor, pgcat, RDS Proxy…) hands a client's queries to server sessions it chooses, so the
 * session that took the migration lock is not the one the next query runs on, and a lock left on a
 * pooled server session outlives the run. The job cannot hold its lock through one, so it refuses
 * at connect time, before it has taken any lock or changed anything.
 *
 * The signal: a pooler that shares server sessions between clients must route cancel requests
 * itself, so it answers the client's startup with a cancel key of its own (BackendKeyData), and the
 * process id in that key is not the server backend's. PgBouncer does so in every pool mode. A
 * direct connection, or a plain TCP proxy (Railway's public TCP proxy), passes the server's own key
 * through, so the two agree.
 */
import { DatabaseUnavailableError } from "../shared/errors.ts";

export const POOLER_DETECTED = "POOLER_DETECTED";

/** What to do instead, for every message that finds a pooler between the job and the database. */
export const CONNECT_DIRECTLY =
  "Point DATABASE_URL (DATABASE_PUBLIC_URL with --public-url) at PostgreSQL itself: on Railway, the Postgres service's " +
  "DATABASE_URL (its private URL, port 5432); on Supabase-style setups, the direct connection, not the pooler's port 6543.";

/**
 * Throws unless the backend the connection announced at startup is the server session that
 * answered: `announcedPid` from BackendKeyData, `serverPid` from `pg_backend_pid()`.
 */
export function refuseProtocolPooler(url: string, announcedPid: number, serverPid: number): void {
  if (announcedPid === serverPid) return;
  throw new DatabaseUnavailableError(
    `${endpoint(url)} is a connection pooler, not PostgreSQL itself: the connection announced backend pid ${announcedPid}, ` +
      `but server session pid ${serverPid} answered. A pooler hands the job's queries to changing server sessions, ` +
      `so the migration lock cannot be held through it. Stopped before taking the lock or applying anything. ${CONNECT_DIRECTLY}`,
    POOLER_DETECTED,
  );
}

/**
 * The other sign of a pooler: the job's session settings travel in the startup packet, and
 * PgBouncer refuses startup parameters it does not know before any query can run.
 */
export function refusedStartupParameter(url: string, error: unknown): DatabaseUnavailableError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (!/unsupported startup parameter/i.test(message)) return undefined;
  return new DatabaseUnavailableError(
    `${endpoint(url)} is a connection pooler, not PostgreSQL itself: it refused the job's session settings (${message}). ` +
      `A pooler hands the job's queries to changing server sessions, so the migration lock cannot be held through it. ` +
      `Stopped before taking the lock or applying anything. ${CONNECT_DIRECTLY}`,
    POOLER_DETECTED,
    { cause: error },
  );
}

/** `host:port` of the URL: never its user or password. */
function endpoint(url: string): string {
  const { hostname, port } = new URL(url);
  return `${hostname}:${port || "5432"}`;
}
