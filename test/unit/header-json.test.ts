import { describe, expect, it } from 'vitest';
import { toHeaderSafeJson } from '../../src/dropbox/header-json.js';

describe('toHeaderSafeJson', () => {
  it('leaves ASCII JSON unchanged', () => {
    const value = { path: '/a b/c"d\\e', limit: 5, recursive: true, nested: [null] };
    expect(toHeaderSafeJson(value)).toBe(JSON.stringify(value));
  });

  it('escapes non-ASCII and DEL like the Dropbox example', () => {
    const json = toHeaderSafeJson({ field: 'some_\u00fc\u00f1\u00eec\u00f8d\u00e9_and_\u007f' });
    expect(json).toBe('{"field":"some_\\u00fc\\u00f1\\u00eec\\u00f8d\\u00e9_and_\\u007f"}');
  });

  it('escapes astral characters as surrogate pairs', () => {
    expect(toHeaderSafeJson('😀')).toBe('"\\ud83d\\ude00"');
  });

  it('keeps U+007E and escapes U+FFFF', () => {
    expect(toHeaderSafeJson('~\uffff')).toBe('"~\\uffff"');
  });

  it('produces only printable ASCII that parses back', () => {
    const value = { path: '/Ünïcødé/日本語/😀 file\t.txt', n: 1 };
    const json = toHeaderSafeJson(value);
    expect(json).toMatch(/^[\x20-\x7e]*$/);
    expect(JSON.parse(json)).toEqual(value);
  });

  it('keeps lone surrogates parseable', () => {
    const json = toHeaderSafeJson('\ud800');
    expect(json).toBe('"\\ud800"');
    expect(JSON.parse(json)).toBe('\ud800');
  });

  it('rejects values without JSON form', () => {
    expect(() => toHeaderSafeJson(undefined)).toThrow(TypeError);
  });
});
