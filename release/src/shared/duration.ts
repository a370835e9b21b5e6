/** Durations in variables and directives: `250ms`, `30s`, `5min`, `1h`; a bare number is milliseconds, as in PostgreSQL. */
import { z } from "zod";

const UNIT_MS = { ms: 1, s: 1_000, min: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|min|h)?$/;

/** A duration in milliseconds, parsed from its text. */
export const duration = z.string().transform((value, ctx) => {
  const match = DURATION.exec(value.trim());
  if (!match) {
    ctx.addIssue({ code: "custom", message: `"${value}" is not a duration; write it like 500ms, 30s, 5min or 1h` });
    return z.NEVER;
  }
  return Math.round(Number(match[1]) * UNIT_MS[(match[2] ?? "ms") as keyof typeof UNIT_MS]);
});

/** A duration in milliseconds, with the default written as a duration too. */
export function durationMs(defaultValue: string) {
  return z.string().default(defaultValue).pipe(duration);
}

/** A duration for PostgreSQL settings such as lock_timeout: whole milliseconds, "0" meaning no limit. */
export function postgresDuration(ms: number): string {
  return `${Math.round(ms)}ms`;
}

export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  // Whole seconds first, so 119.9 s reads "2 min 0 s", never "1 min 60 s".
  const seconds = Math.round(ms / 1_000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}
