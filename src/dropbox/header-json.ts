/**
 * JSON for HTTP headers such as `Dropbox-API-Arg` and `Dropbox-API-Result`.
 *
 * Dropbox requires header JSON to be "HTTP header safe": U+007F and every non-ASCII
 * character is written as a JSON `\uXXXX` escape. Escaping works per UTF-16 code unit, so an
 * astral character becomes a surrogate pair, as the official JavaScript SDK does. Node also
 * rejects header values above U+00FF, so unescaped JSON would fail before it reached the wire.
 */

const UNSAFE_CODE_UNIT = /[\u007f-\uffff]/g;

/**
 * Serializes `value` with `JSON.stringify` and escapes every code unit from U+007F up.
 * Throws a TypeError when `value` has no JSON form (undefined, a function or a symbol).
 */
export function toHeaderSafeJson(value: unknown): string {
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) {
    throw new TypeError(`cannot encode ${typeof value} as JSON for an HTTP header`);
  }
  return json.replace(UNSAFE_CODE_UNIT, escapeCodeUnit);
}

function escapeCodeUnit(char: string): string {
  return '\\u' + char.charCodeAt(0).toString(16).padStart(4, '0');
}
