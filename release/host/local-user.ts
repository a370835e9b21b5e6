/** Who runs the job outside Railway, as the run history's applied_by names them: `user@host`. */
import { hostname, userInfo } from "node:os";

/**
 * The login variables come first: Bun reports the name "unknown" for some accounts (root in a
 * container without a passwd entry for it). Without them, uid 0 is root by definition; any other
 * account without a name is its uid.
 */
export function localUser(env: Record<string, string | undefined>): string {
  const { username, uid } = userInfo();
  const name = env.USER ?? env.LOGNAME ?? (username !== "unknown" ? username : uid === 0 ? "root" : `uid ${uid}`);
  return `${name}@${hostname()}`;
}
