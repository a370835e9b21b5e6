/**
 * Positions inside a migration file. The parser reports byte offsets into the UTF-8 text while
 * PostgreSQL reports 1-based character positions inside one statement; a person wants the line
 * and column in the file. CRLF files count one line per "\n".
 *
 * A file's positions are looked up once per statement and once per lint finding, tens of thousands
 * of times in a large file. Each lookup goes through an index of the file built on first use (the
 * byte offset of every line start, and the number of characters before every block of bytes), so
 * a lookup costs a binary search and a scan of at most one block, never a scan from byte 0.
 */

const NEWLINE = 0x0a;
/** Bytes between two character counts of the index: the most a lookup scans byte by byte. */
const BLOCK_BYTES = 1024;

export interface LineColumn {
  readonly line: number;
  readonly column: number;
}

/** 1-based line and column (in characters) of a byte offset into UTF-8 source. */
export function lineColumnAtByte(source: Uint8Array, byteOffset: number): LineColumn {
  const index = indexOf(source);
  const offset = Math.max(0, Math.min(byteOffset, source.length));
  const line = index.lineContaining(offset);
  return { line: line + 1, column: index.charactersBetween(index.lineStarts[line]!, offset) + 1 };
}

/** 1-based line of a byte offset into UTF-8 source. */
export function lineAtByte(source: Uint8Array, byteOffset: number): number {
  return indexOf(source).lineContaining(Math.max(0, Math.min(byteOffset, source.length))) + 1;
}

/**
 * Byte offset of the character at a 1-based character position counted from `fromByte` (a
 * character's first byte, such as a statement's start); the end of the source when it has fewer.
 */
export function byteOffsetOfCharacter(source: Uint8Array, position: number, fromByte = 0): number {
  if (position < 1) return source.length;
  const index = indexOf(source);
  return index.byteOffsetOfCharacterIndex(index.charactersBefore(fromByte) + position - 1);
}

/** Byte offset where a 1-based line starts; the end of the source for a line past the last. */
export function lineStartByte(source: Uint8Array, line: number): number {
  const starts = indexOf(source).lineStarts;
  return line >= 1 && line <= starts.length ? starts[line - 1]! : source.length;
}

/** Built once per file's bytes and kept as long as they are. */
const indexes = new WeakMap<Uint8Array, SourceIndex>();

function indexOf(source: Uint8Array): SourceIndex {
  let index = indexes.get(source);
  if (!index) {
    index = new SourceIndex(source);
    indexes.set(source, index);
  }
  return index;
}

class SourceIndex {
  /** Byte offset of the first byte of each line, in order; line 1 starts at 0. */
  readonly lineStarts: Uint32Array;
  /** charactersBeforeBlock[k]: how many characters start before byte k * BLOCK_BYTES. */
  private readonly charactersBeforeBlock: Uint32Array;

  constructor(private readonly source: Uint8Array) {
    this.lineStarts = lineStartsOf(source);
    this.charactersBeforeBlock = new Uint32Array(Math.floor(source.length / BLOCK_BYTES) + 1);
    let characters = 0;
    for (let block = 1; block < this.charactersBeforeBlock.length; block++) {
      characters += countCharacters(source, (block - 1) * BLOCK_BYTES, block * BLOCK_BYTES);
      this.charactersBeforeBlock[block] = characters;
    }
  }

  /** 0-based index of the line holding the byte at `offset` (a "\n" belongs to the line it ends). */
  lineContaining(offset: number): number {
    return lastAtOrBelow(this.lineStarts, offset);
  }

  /** Characters starting in [from, to): counted directly across a short span, such as most lines. */
  charactersBetween(from: number, to: number): number {
    return to - from <= BLOCK_BYTES ? countCharacters(this.source, from, to) : this.charactersBefore(to) - this.charactersBefore(from);
  }

  charactersBefore(offset: number): number {
    const block = Math.floor(offset / BLOCK_BYTES);
    return this.charactersBeforeBlock[block]! + countCharacters(this.source, block * BLOCK_BYTES, offset);
  }

  /** Byte offset of the character with 0-based index `wanted` in the whole source. */
  byteOffsetOfCharacterIndex(wanted: number): number {
    const block = lastAtOrBelow(this.charactersBeforeBlock, wanted);
    let characters = this.charactersBeforeBlock[block]!;
    for (let i = block * BLOCK_BYTES; i < this.source.length; i++) {
      if (!isCharacterStart(this.source[i]!)) continue;
      if (characters === wanted) return i;
      characters++;
    }
    return this.source.length;
  }
}

function lineStartsOf(source: Uint8Array): Uint32Array {
  let lines = 1;
  for (let i = source.indexOf(NEWLINE); i >= 0; i = source.indexOf(NEWLINE, i + 1)) lines++;
  const starts = new Uint32Array(lines);
  let line = 1;
  for (let i = source.indexOf(NEWLINE); i >= 0; i = source.indexOf(NEWLINE, i + 1)) starts[line++] = i + 1;
  return starts;
}

/** Index of the last entry of a non-decreasing array that is at most `value` (the array starts with 0). */
function lastAtOrBelow(sorted: Uint32Array, value: number): number {
  let low = 0;
  let high = sorted.length - 1;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (sorted[middle]! <= value) low = middle;
    else high = middle - 1;
  }
  return low;
}

function countCharacters(source: Uint8Array, from: number, to: number): number {
  let characters = 0;
  for (let i = from; i < to; i++) if (isCharacterStart(source[i]!)) characters++;
  return characters;
}

/** UTF-8 continuation bytes look like 10xxxxxx; every other byte starts a character. */
function isCharacterStart(byte: number): boolean {
  return (byte & 0xc0) !== 0x80;
}
