/**
 * Names Dropbox refuses, checked where a name is made (create, mkdir, rename) so that the
 * program gets the error at once and not at close. Sources: Dropbox's `disallowed_name`
 * WriteError for names its clients ignore, the 255-character limit per path component, and
 * names with a trailing space or a control character, which rclone's tests found Dropbox refuses.
 */
import { splitPath } from '../cache/paths.js';
import { Errno, FsError } from '../fs/errno.js';

// Lower-cased: Dropbox compares names ignoring case.
const DISALLOWED_NAMES = new Set(['desktop.ini', 'thumbs.db', '.ds_store', 'icon\r', '.dropbox', '.dropbox.attr']);
// NOTE: whether Dropbox counts these 255 in code points or in UTF-16 units is not verified;
// this counts code points.
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
  if (name.endsWith(' ')) {
    throw new FsError(Errno.EINVAL, `${path}: Dropbox does not store names that end with a space`);
  }
  // eslint-disable-next-line no-control-regex -- control characters are what is checked
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new FsError(Errno.EINVAL, `${path}: Dropbox does not store names with control characters`);
  }
}
