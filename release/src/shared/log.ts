/**
 * One event a line. Text for a person at a terminal; JSON for Railway, which parses one-line JSON
 * objects into structured logs (`message` and `level`, every other key a filterable attribute).
 * Errors and warnings go to stderr, everything else to stdout.
 */
import type { Redactor } from "./redact.ts";

export type LogFormat = "text" | "json";
export type Level = "info" | "warn" | "error";
export type Attributes = Record<string, unknown>;

export interface Logger {
  info(event: string, message: string, attributes?: Attributes): void;
  warn(event: string, message: string, attributes?: Attributes): void;
  error(event: string, message: string, attributes?: Attributes): void;
}

export interface LogSink {
  stdout(line: string): void;
  stderr(line: string): void;
}

/**
 * `colour`: the text format's "error:" and "warning:" in red and yellow, for a person at a
 * terminal; the caller decides (stderr a terminal, NO_COLOR unset). JSON lines are never coloured.
 */
export function createLogger(format: LogFormat, sink: LogSink, redact: Redactor, colour = false): Logger {
  const emit = (level: Level, event: string, message: string, attributes: Attributes = {}) => {
    const line = format === "json" ? jsonLine(level, event, message, attributes) : textLine(level, message, colour);
    const safe = redact(line);
    if (level === "info") sink.stdout(safe);
    else sink.stderr(safe);
  };
  return {
    info: (event, message, attributes) => emit("info", event, message, attributes),
    warn: (event, message, attributes) => emit("warn", event, message, attributes),
    error: (event, message, attributes) => emit("error", event, message, attributes),
  };
}

function jsonLine(level: Level, event: string, message: string, attributes: Attributes): string {
  const defined = Object.fromEntries(Object.entries(attributes).filter(([, value]) => value !== undefined));
  return JSON.stringify({ level, message, event, ...defined }, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
}

const COLOURED: Readonly<Record<Exclude<Level, "info">, string>> = { warn: "\x1b[33mwarning:\x1b[0m", error: "\x1b[1;31merror:\x1b[0m" };
const PLAIN: Readonly<Record<Exclude<Level, "info">, string>> = { warn: "warning:", error: "error:" };

function textLine(level: Level, message: string, colour: boolean): string {
  return level === "info" ? message : `${(colour ? COLOURED : PLAIN)[level]} ${message}`;
}

/** Whether a person reads `stderr` at a terminal and has not asked for no colour (https://no-color.org: NO_COLOR set and not empty). */
export function wantsColour(stderrIsTty: boolean, env: Record<string, string | undefined>): boolean {
  return stderrIsTty && !env.NO_COLOR;
}
