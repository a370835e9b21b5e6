/**
 * Umzug, loaded only when a migration is about to run: its package entry also loads its
 * command-line parser, about 60 ms that a deploy with nothing pending should not pay.
 */
type UmzugModule = typeof import("umzug");

let loaded: UmzugModule | undefined;

export async function loadUmzug(): Promise<UmzugModule> {
  loaded ??= await import("umzug");
  return loaded;
}

/** Umzug wraps what a migration throws in its own MigrationError; the job reports the original. */
export function unwrapUmzug(error: unknown): unknown {
  return loaded && error instanceof loaded.MigrationError ? error.cause : error;
}
