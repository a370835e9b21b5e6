/**
 * Every rule the lint gate knows, squawk's and the job's own, with the level it has when lint.toml
 * does not name it and the fix its findings print.
 *
 * Defaults: a rule whose finding means the serving release breaks, or that its queries wait behind a
 * long lock during the pre-deploy window, is an error; advice about style or future maintenance is a
 * warning; a rule the job already covers another way is off. The squawk list is that of squawk
 * 2.66.0, the version package.json pins: a rule squawk adds later is reported as an error until it
 * is listed here, so an upgrade can only make the gate stricter, never quietly looser.
 */

export type RuleLevel = "error" | "warning" | "off";
export type FindingLevel = Exclude<RuleLevel, "off">;
export type RuleSource = "squawk" | "job";

export interface RuleSpec {
  readonly source: RuleSource;
  readonly defaultLevel: RuleLevel;
  /**
   * What to do instead. For a squawk rule it replaces squawk's own help, which is missing for many
   * rules and never knows that this job wraps each file in a transaction.
   */
  readonly fix?: string;
  /** squawk runs it only when asked to with --include. */
  readonly optIn?: boolean;
  /** Why no waiver can silence it: what it finds is refused anyway, by the job or by PostgreSQL. */
  readonly unwaivable?: string;
}

/** Rules squawk reports that this catalog does not know yet (a newer squawk): see the file comment. */
export const UNLISTED_SQUAWK_RULE_LEVEL: FindingLevel = "error";

const NO_TRANSACTION_FILE = "a file of its own that starts with -- migrate:no-transaction";

/** The fix for removing something the release still serving may use. */
function removeInALaterRelease(thing: string): string {
  return `the release still serving uses this ${thing} until the new one is live: first ship a release that no longer uses it, then drop it in a later migration`;
}

const SQUAWK_RULES: Readonly<Record<string, RuleSpec>> = {
  "adding-field-with-default": { source: "squawk", defaultLevel: "error" },
  "adding-foreign-key-constraint": { source: "squawk", defaultLevel: "error" },
  "adding-not-nullable-field": {
    source: "squawk",
    defaultLevel: "error",
    fix: "add CHECK (column IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT NULL (PostgreSQL skips the scan once a valid check proves it); make sure the serving release never writes NULL there first",
  },
  "adding-required-field": {
    source: "squawk",
    defaultLevel: "error",
    fix: "give the column a constant DEFAULT or make it nullable: the release still serving does not know the column, so its inserts would fail",
  },
  "adding-serial-primary-key-field": { source: "squawk", defaultLevel: "error" },
  "ban-alter-domain-with-add-constraint": { source: "squawk", defaultLevel: "error" },
  "ban-char-field": { source: "squawk", defaultLevel: "warning", fix: "use text (with a CHECK on its length if one matters)" },
  // Covered, with DROP and REINDEX and DETACH as well, by concurrently-in-transaction.
  "ban-concurrent-index-creation-in-transaction": { source: "squawk", defaultLevel: "off" },
  "ban-create-domain-with-constraint": { source: "squawk", defaultLevel: "warning", fix: "put the constraint on the table columns instead of the domain" },
  "ban-drop-column": { source: "squawk", defaultLevel: "error", fix: removeInALaterRelease("column") },
  "ban-drop-database": { source: "squawk", defaultLevel: "error", fix: "never drop a database from a migration" },
  "ban-drop-not-null": {
    source: "squawk",
    defaultLevel: "warning",
    fix: "check that no reader assumes the column is always set; the serving release keeps writing it, so nothing breaks during the deploy",
  },
  "ban-drop-table": { source: "squawk", defaultLevel: "error", fix: removeInALaterRelease("table") },
  "ban-duplicate-column-assignments": { source: "squawk", defaultLevel: "error", fix: "assign each column once" },
  "ban-truncate-cascade": { source: "squawk", defaultLevel: "error" },
  "ban-uncommitted-transaction": { source: "squawk", defaultLevel: "error" },
  "changing-column-type": {
    source: "squawk",
    defaultLevel: "error",
    fix: "add a column of the new type, fill it and write both from the new release, then drop the old column in a later migration",
  },
  "constraint-missing-not-valid": { source: "squawk", defaultLevel: "error" },
  "disallowed-unique-constraint": { source: "squawk", defaultLevel: "error" },
  "identifier-too-long": { source: "squawk", defaultLevel: "warning", fix: "shorten the name to 63 bytes, the length PostgreSQL keeps" },
  "prefer-bigint-over-int": { source: "squawk", defaultLevel: "warning" },
  "prefer-bigint-over-smallint": { source: "squawk", defaultLevel: "warning" },
  "prefer-identity": { source: "squawk", defaultLevel: "warning" },
  "prefer-repack": { source: "squawk", defaultLevel: "warning" },
  // squawk raises it only outside a transaction, where a failure part-way leaves earlier statements applied.
  "prefer-robust-stmts": {
    source: "squawk",
    defaultLevel: "warning",
    fix: "use IF EXISTS / IF NOT EXISTS so the no-transaction file can run again after a failure part-way",
  },
  "prefer-text-field": { source: "squawk", defaultLevel: "warning" },
  "prefer-timestamp-tz": { source: "squawk", defaultLevel: "warning" },
  "renaming-column": {
    source: "squawk",
    defaultLevel: "error",
    fix: "the serving release still queries the old name: add the new column, write both from the new release, and drop the old one in a later migration",
  },
  "renaming-table": {
    source: "squawk",
    defaultLevel: "error",
    fix: "the serving release still queries the old name: create the new table (or a view under the new name), switch the code, and remove the old name in a later migration",
  },
  "require-concurrent-index-creation": { source: "squawk", defaultLevel: "error", fix: `use CREATE INDEX CONCURRENTLY, in ${NO_TRANSACTION_FILE}` },
  "require-concurrent-index-deletion": { source: "squawk", defaultLevel: "error", fix: `use DROP INDEX CONCURRENTLY, in ${NO_TRANSACTION_FILE}` },
  "require-concurrent-partition-detach": { source: "squawk", defaultLevel: "error", fix: `use DETACH PARTITION … CONCURRENTLY, in ${NO_TRANSACTION_FILE}` },
  "require-concurrent-reindex": { source: "squawk", defaultLevel: "error", fix: `use REINDEX … CONCURRENTLY, in ${NO_TRANSACTION_FILE}` },
  "require-enum-value-ordering": { source: "squawk", defaultLevel: "warning" },
  // The job sets lock_timeout and statement_timeout for every migration itself.
  "require-lock-timeout": { source: "squawk", defaultLevel: "off" },
  "require-statement-timeout": { source: "squawk", defaultLevel: "off" },
  "require-timeout-settings": { source: "squawk", defaultLevel: "off" },
  "require-table-schema": { source: "squawk", defaultLevel: "off", optIn: true, fix: "qualify the table with its schema, e.g. platform.users" },
  // Covered, with SAVEPOINT as well, by transaction-control-in-transaction.
  "transaction-nesting": { source: "squawk", defaultLevel: "off" },
  // The job's parser (PostgreSQL 18's own) has accepted the statement by the time squawk sees it.
  "syntax-error": {
    source: "squawk",
    defaultLevel: "warning",
    fix: "PostgreSQL accepts this statement but squawk's parser does not, so squawk's rules did not check it: review it by hand",
  },
};

const JOB_RULES: Readonly<Record<string, RuleSpec>> = {
  "security-definer-search-path": {
    source: "job",
    defaultLevel: "error",
    fix: "add SET search_path = pg_catalog, <the schemas it uses> to the function, so no caller can put objects of their own ahead of the ones it means",
  },
  "transaction-control-in-transaction": {
    source: "job",
    defaultLevel: "error",
    fix: "remove it (the job wraps each file in one transaction), or add -- migrate:no-transaction at the top of the file",
    unwaivable: "the job refuses a transactional file that ends or opens a transaction itself, whatever the lint says",
  },
  "concurrently-in-transaction": {
    source: "job",
    defaultLevel: "error",
    fix: `PostgreSQL refuses CONCURRENTLY inside a transaction block: move the statement to ${NO_TRANSACTION_FILE}`,
    unwaivable: "PostgreSQL refuses CONCURRENTLY inside a transaction block, whatever the lint says",
  },
  "renaming-view": {
    source: "job",
    defaultLevel: "error",
    fix: "the serving release still queries the old name: create the view under the new name beside the old one, and drop the old one in a later migration",
  },
  "dropping-view": { source: "job", defaultLevel: "error", fix: removeInALaterRelease("view") },
  "moving-to-another-schema": {
    source: "job",
    defaultLevel: "error",
    fix: "the serving release still finds it under its old schema: create it in the new one beside the old, switch the code, and remove the old one in a later migration",
  },
  "waiver-without-reason": { source: "job", defaultLevel: "error", fix: "write why the rule does not apply after its name: -- lint:allow <rule> <reason>" },
  "stale-waiver": { source: "job", defaultLevel: "warning", fix: "remove the waiver, or put it directly above the statement it is meant for" },
};

export const RULES: Readonly<Record<string, RuleSpec>> = { ...SQUAWK_RULES, ...JOB_RULES };

export function isKnownRule(name: string): boolean {
  return Object.hasOwn(RULES, name);
}

export function squawkRuleNames(): string[] {
  return Object.keys(SQUAWK_RULES);
}

/** A squawk rule unknown to this catalog is treated as the file comment explains. */
export function ruleSpec(name: string): RuleSpec {
  return RULES[name] ?? { source: "squawk", defaultLevel: UNLISTED_SQUAWK_RULE_LEVEL };
}
