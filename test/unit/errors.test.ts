import { describe, expect, it } from 'vitest';
import { errorTags } from '../../src/dropbox/errors.js';

describe('errorTags', () => {
  it.each([
    [{ '.tag': 'path', path: { '.tag': 'not_found' } }, ['path', 'not_found']],
    [{ '.tag': 'path_lookup', path_lookup: { '.tag': 'not_found' } }, ['path_lookup', 'not_found']],
    [{ '.tag': 'incorrect_offset', correct_offset: 12 }, ['incorrect_offset']],
    [
      { '.tag': 'path', reason: { '.tag': 'conflict', conflict: { '.tag': 'file' } }, upload_session_id: 'x' },
      ['path', 'conflict', 'file'],
    ],
    [
      { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: 5 } },
      ['lookup_failed', 'incorrect_offset'],
    ],
    [{ reason: { '.tag': 'too_many_write_operations' } }, []],
    ['text', []],
    [undefined, []],
  ])('decodes %j', (error, tags) => {
    expect(errorTags(error)).toEqual(tags);
  });
});
