/**
 * What a run has applied (or rolled back), where it stopped and what it never reached, followed
 * from its events.
 * A run that fails or is cancelled after committing some files leaves them live under the release
 * still serving: its last line says so, by name, so that a person reading the deploy log in an
 * incident knows which schema production now has.
 */
import type { MigrationFile } from "../files/migration-files.ts";
import type { ChangingAction, RunListener } from "./run-events.ts";

export interface ProgressSummary {
  /** What the run was doing to its files: `up` applies them, `down` rolls them back. */
  readonly action: ChangingAction;
  /** The files it finished: applied, or rolled back. */
  readonly applied: readonly string[];
  /** The file being applied when the run stopped; none when it stopped between files. */
  readonly stoppedAt: string | undefined;
  readonly notAttempted: readonly string[];
}

/** Names shown in a line or an attribute; the counts always cover every file. */
const NAMES_SHOWN = 20;

export class RunProgress {
  #planned: { readonly files: readonly MigrationFile[]; readonly action: ChangingAction } | undefined;
  readonly #applied: MigrationFile[] = [];
  #current: MigrationFile | undefined;

  readonly listener: RunListener = (event) => {
    if (event.type === "files_planned") this.#planned = { files: event.files, action: event.action };
    else if (event.type === "file_started" && event.action === this.#planned?.action) this.#current = event.file;
    else if (event.type === "file_done" && event.action === this.#planned?.action) {
      this.#applied.push(event.file);
      this.#current = undefined;
    }
  };

  /** Undefined until the run has said what it means to apply. */
  summary(): ProgressSummary | undefined {
    if (!this.#planned) return undefined;
    const reached = new Set([...this.#applied, ...(this.#current ? [this.#current] : [])]);
    return {
      action: this.#planned.action,
      applied: this.#applied.map((file) => file.name),
      stoppedAt: this.#current?.name,
      notAttempted: this.#planned.files.filter((file) => !reached.has(file)).map((file) => file.name),
    };
  }
}

/** How a summary says what was finished, by action. */
const FINISHED: Readonly<Record<ChangingAction, { readonly none: string; readonly some: (list: string) => string; readonly attribute: string }>> = {
  apply: { none: "nothing applied", some: (list) => `applied ${list} (live now, under the release still serving)`, attribute: "applied" },
  "roll back": { none: "nothing rolled back", some: (list) => `rolled back ${list} (undone now, under the release still serving)`, attribute: "rolled_back" },
};

/** The line under a failure: "in this run: applied 015_a (live now, under the release still serving); stopped at 016_b; not attempted: 017_c". */
export function describeProgress({ action, applied, stoppedAt, notAttempted }: ProgressSummary): string {
  const finished = FINISHED[action];
  const parts = [
    applied.length === 0 ? finished.none : finished.some(names(applied)),
    ...(stoppedAt ? [`stopped at ${stoppedAt}`] : []),
    notAttempted.length === 0 ? "nothing left unattempted" : `not attempted: ${names(notAttempted)}`,
  ];
  return `in this run: ${parts.join("; ")}`;
}

/** The summary as a log line's attributes. */
export function progressAttributes({ action, applied, stoppedAt, notAttempted }: ProgressSummary): Record<string, unknown> {
  const { attribute } = FINISHED[action];
  return {
    [attribute]: applied.slice(0, NAMES_SHOWN),
    [`${attribute}_count`]: applied.length,
    stopped_at: stoppedAt ?? null,
    not_attempted: notAttempted.slice(0, NAMES_SHOWN),
    not_attempted_count: notAttempted.length,
  };
}

function names(list: readonly string[]): string {
  const shown = list.slice(0, NAMES_SHOWN).join(", ");
  return list.length > NAMES_SHOWN ? `${shown} and ${list.length - NAMES_SHOWN} more` : shown;
}
