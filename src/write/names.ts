/**
 * Names Dropbox refuses, checked where a name is made (create, mkdir, rename) so that the
 * program gets the error at once and not at close. Sources: Dropbox's `disallowed_name`
 * WriteError for names its clients ignore, and the 255-character limit per path component.
 */
import { splitPath } from '../cache/paths.js';
import { Errno, FsError } from '../fs/errno.js';

// Lower-cased: Dropbox compares names ignoring case.
const DISALLOWED_NAMES = new Set(['desktop.ini', 'thumbs.db', '.ds_store', 'icon\r', '.dropbox', '.dropbox.attr']);
const MAX_NAME_CHARS = 255;

/** @throws FsError EINVAL for a name Dropbox refuses, ENAMETOOLONG for one over 255 characters. */
export function checkName(path: string): void {
  const { name } = splitPath(path);
  if ([...name].length > MAX_NAME_CHARS) {
    throw new FsError(Errno.ENAMETOOLONG, `${path}: Dropbox takes names of at most ${MAX_NAME_CHARS} characters`);
  }
  if (DISALLOWED_NAMES.has(name.toLowerCase())) {
    throw new FsError(Errno.EINVAL, `${path}: Dropbox does not store files named ${JSON.stringify(name)}`);
  }
  if (name.includes('\\')) {
    throw new FsError(Errno.EINVAL, `${path}: Dropbox does not allow a backslash in a name`);
  }
}
