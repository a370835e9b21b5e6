/**
 * The two ways to set how strict the lint gate is: `lint.toml` beside the migrations (rule levels,
 * kept in the repository and shipped with the migrations) and `MIGRATE_LINT=warn` (an operator's
 * one-run switch that reports errors as warnings). Both are parsed with zod at the edge.
 */
import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "../shared/errors.ts";
import { isKnownRule, ruleSpec, type RuleLevel } from "./catalog.ts";
import { LINT_MODE_VARIABLE } from "../shared/config.ts";

export const LINT_CONFIG_FILE = "lint.toml";


/** What a relaxed finding's log line says about why it did not block. */
export const RELAXED_NOTE = `relaxed by ${LINT_MODE_VARIABLE}=warn`;

export interface LintConfig {
  /** The file the levels came from, or undefined when there is none and every rule has its default. */
  readonly path: string | undefined;
  readonly levels: ReadonlyMap<string, RuleLevel>;
}

export const DEFAULT_LINT_CONFIG: LintConfig = { path: undefined, levels: new Map() };

const LevelSchema = z.enum(["error", "warning", "off"]);
const LintConfigSchema = z.strictObject(
  { rules: z.record(z.string(), z.unknown(), { error: '[rules] must be a table of rule = "level" lines' }).default({}) },
  { error: (issue) => (issue.code === "unrecognized_keys" ? `unknown key ${issue.keys.map((key) => `"${key}"`).join(", ")}: the file holds only a [rules] table` : undefined) },
);

export function levelOf(config: LintConfig, rule: string): RuleLevel {
  return config.levels.get(rule) ?? ruleSpec(rule).defaultLevel;
}

/** Reads `<migrationsDir>/lint.toml`; without one, every rule has its default level. Throws ConfigError. */
export async function readLintConfig(migrationsDir: string, readFile: (path: string) => Promise<Uint8Array>): Promise<LintConfig> {
  const path = join(migrationsDir, LINT_CONFIG_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return DEFAULT_LINT_CONFIG;
    throw new ConfigError([`${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`]);
  }
  return parseLintConfig(path, new TextDecoder().decode(bytes));
}

/** Every problem in the file is reported at once, each naming the file. Throws ConfigError. */
export function parseLintConfig(path: string, text: string): LintConfig {
  const shape = LintConfigSchema.safeParse(parseToml(path, text));
  if (!shape.success) throw new ConfigError(shape.error.issues.map((issue) => `${path}: ${issue.message}`));
  const problems: string[] = [];
  const levels = new Map<string, RuleLevel>();
  for (const [rule, value] of Object.entries(shape.data.rules)) {
    const level = LevelSchema.safeParse(value);
    if (!isKnownRule(rule)) problems.push(`${path}: unknown rule "${rule}" (README.md, "The lint gate", lists the rules)`);
    else if (!level.success) problems.push(`${path}: ${rule}: the level must be "error", "warning" or "off", not ${JSON.stringify(value)}`);
    else levels.set(rule, level.data);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { path, levels };
}

function parseToml(path: string, text: string): unknown {
  try {
    return Bun.TOML.parse(text);
  } catch (error) {
    throw new ConfigError([`${path}: not valid TOML: ${(error as Error).message}`]);
  }
}
