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

export function createLogger(format: LogFormat, sink: LogSink, redact: Redactor): Logger {
  const emit = (level: Level, event: string, message: string, attributes: Attributes = {}) => {
    const line = format === "json" ? jsonLine(level, event, message, attributes) : textLine(level, message);
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

function textLine(level: Level, message: string): string {
  return level === "info" ? message : `${level === "warn" ? "warning" : "error"}: ${message}`;
}
