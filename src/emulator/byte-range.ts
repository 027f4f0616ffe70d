/**
 * Range header parsing for content-download routes (RFC 9110, section 14). Dropbox does not
 * document its edge cases, so this follows the RFC: one range of the forms `bytes=S-E`,
 * `bytes=S-` and `bytes=-N`. A header that is not a single byte range is ignored and the
 * whole file is sent with 200, as the RFC allows a server to do. A range that starts at or
 * after the end, or a zero-length suffix, is unsatisfiable (416).
 */

export type ByteRange =
  | { kind: 'whole' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/i;

/** Resolves `header` against a file of `size` bytes; `end` is inclusive. */
export function parseByteRange(header: string | undefined, size: number): ByteRange {
  const match = header === undefined ? null : SINGLE_RANGE.exec(header.trim());
  if (match === null) {
    return { kind: 'whole' };
  }
  const first = match[1] as string;
  const last = match[2] as string;
  if (first === '' && last === '') {
    return { kind: 'whole' };
  }
  if (first === '') {
    return suffixRange(Number(last), size);
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Number(last);
  if (last !== '' && end < start) {
    // RFC 9110 calls this range invalid, so the header is ignored.
    return { kind: 'whole' };
  }
  if (start >= size) {
    return { kind: 'unsatisfiable' };
  }
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

function suffixRange(length: number, size: number): ByteRange {
  if (length === 0 || size === 0) {
    return { kind: 'unsatisfiable' };
  }
  return { kind: 'partial', start: Math.max(0, size - length), end: size - 1 };
}
