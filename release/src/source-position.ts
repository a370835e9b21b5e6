/**
 * Positions inside a migration file. The parser reports byte offsets into the UTF-8 text while
 * PostgreSQL reports 1-based character positions inside one statement; a person wants the line
 * and column in the file. CRLF files count one line per "\n".
 */

const NEWLINE = 0x0a;

export interface LineColumn {
  readonly line: number;
  readonly column: number;
}

/** 1-based line and column (in characters) of a byte offset into UTF-8 source. */
export function lineColumnAtByte(source: Uint8Array, byteOffset: number): LineColumn {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(byteOffset, source.length);
  for (let i = 0; i < end; i++) {
    if (source[i] === NEWLINE) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: countCharacters(source, lineStart, end) + 1 };
}

/** Byte offset of the character at a 1-based character position inside UTF-8 source. */
export function byteOffsetOfCharacter(source: Uint8Array, position: number): number {
  let characters = 0;
  for (let i = 0; i < source.length; i++) {
    if (isCharacterStart(source[i]!)) {
      characters++;
      if (characters === position) return i;
    }
  }
  return source.length;
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
