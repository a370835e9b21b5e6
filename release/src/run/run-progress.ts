/**
 * What a run has applied, where it stopped and what it never reached, followed from its events.
 * A run that fails or is cancelled after committing some files leaves them live under the release
 * still serving: its last line says so, by name, so that a person reading the deploy log in an
 * incident knows which schema production now has.
 */
import type { MigrationFile } from "../files/migration-files.ts";
import type { RunListener } from "./run-events.ts";

export interface ProgressSummary {
  readonly applied: readonly string[];
  /** The file being applied when the run stopped; none when it stopped between files. */
  readonly stoppedAt: string | undefined;
  readonly notAttempted: readonly string[];
}

/** Names shown in a line or an attribute; the counts always cover every file. */
const NAMES_SHOWN = 20;

export class RunProgress {
  #planned: readonly MigrationFile[] | undefined;
  readonly #applied: MigrationFile[] = [];
  #current: MigrationFile | undefined;

  readonly listener: RunListener = (event) => {
    if (event.type === "files_planned") this.#planned = event.files;
    else if (event.type === "file_started" && event.action === "apply") this.#current = event.file;
    else if (event.type === "file_done" && event.action === "apply") {
      this.#applied.push(event.file);
      this.#current = undefined;
    }
  };

  /** Undefined until the run has said what it means to apply. */
  summary(): ProgressSummary | undefined {
    if (!this.#planned) return undefined;
    const reached = new Set([...this.#applied, ...(this.#current ? [this.#current] : [])]);
    return {
      applied: this.#applied.map((file) => file.name),
      stoppedAt: this.#current?.name,
      notAttempted: this.#planned.filter((file) => !reached.has(file)).map((file) => file.name),
    };
  }
}

/** The line under a failure: "in this run: applied 015_a (live now, under the release still serving); stopped at 016_b; not attempted: 017_c". */
export function describeProgress({ applied, stoppedAt, notAttempted }: ProgressSummary): string {
  const parts = [
    applied.length === 0 ? "nothing applied" : `applied ${names(applied)} (live now, under the release still serving)`,
    ...(stoppedAt ? [`stopped at ${stoppedAt}`] : []),
    notAttempted.length === 0 ? "nothing left unattempted" : `not attempted: ${names(notAttempted)}`,
  ];
  return `in this run: ${parts.join("; ")}`;
}

/** The summary as a log line's attributes. */
export function progressAttributes({ applied, stoppedAt, notAttempted }: ProgressSummary): Record<string, unknown> {
  return {
    applied: applied.slice(0, NAMES_SHOWN),
    applied_count: applied.length,
    stopped_at: stoppedAt ?? null,
    not_attempted: notAttempted.slice(0, NAMES_SHOWN),
    not_attempted_count: notAttempted.length,
  };
}

function names(list: readonly string[]): string {
  const shown = list.slice(0, NAMES_SHOWN).join(", ");
  return list.length > NAMES_SHOWN ? `${shown} and ${list.length - NAMES_SHOWN} more` : shown;
}
