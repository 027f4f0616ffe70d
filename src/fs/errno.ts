/**
 * The one place that turns errors into errno values for the kernel. Filesystem code throws
 * FsError for conditions it detects itself, and everything else is classified here. Anything
 * unknown becomes EIO and is logged, because an unexplained EIO is the hardest thing to debug.
 */
import { constants } from 'node:os';
import { DropboxMountError } from '../errors.js';
import { ApiError, AuthError, BadRequestError, UnavailableError } from '../dropbox/errors.js';
import type { Logger } from '../log/logger.js';

export const Errno = constants.errno;

/** A filesystem condition with a known errno, such as ENOENT for a missing parent listing. */
export class FsError extends DropboxMountError {
  /** Positive errno value, as `os.constants.errno` lists it. */
  readonly errno: number;

  constructor(errno: number, message: string, options?: { cause?: unknown }) {
    super('FS_ERRNO', message, options);
    this.errno = errno;
  }
}

// Dropbox LookupError and WriteError tags with a POSIX meaning. The first tag found in the
// error's tag path wins, so `path/not_found` and `path_lookup/not_found` both give ENOENT.
const TAG_ERRNO: ReadonlyMap<string, number> = new Map([
  ['not_found', Errno.ENOENT],
  ['not_folder', Errno.ENOTDIR],
  ['not_file', Errno.EISDIR],
  ['malformed_path', Errno.EINVAL],
  ['disallowed_name', Errno.EINVAL],
  ['restricted_content', Errno.EACCES],
  ['no_write_permission', Errno.EACCES],
  ['insufficient_space', Errno.ENOSPC],
  ['conflict', Errno.EEXIST],
  ['unsupported_file', Errno.EACCES],
]);

/**
 * Returns the negative errno for a failed FUSE op. Errors that mean a bug or an
 * outage are logged at warn with the op and path; expected ones (ENOENT) are not.
 */
export function toErrno(err: unknown, log: Logger, op: string, path: string): number {
  const errno = classify(err);
  if (errno === undefined) {
    log.warn({ op, path, err: describeError(err) }, 'unexpected error, returning EIO');
    return -Errno.EIO;
  }
  if (errno === Errno.EIO) log.warn({ op, path, err: describeError(err) }, 'returning EIO');
  return -errno;
}

function classify(err: unknown): number | undefined {
  if (err instanceof FsError) return err.errno;
  if (err instanceof ApiError) {
    for (const tag of err.tags) {
      const errno = TAG_ERRNO.get(tag);
      if (errno !== undefined) return errno;
    }
    return undefined;
  }
  if (err instanceof UnavailableError) return Errno.EIO;
  if (err instanceof AuthError) return Errno.EIO;
  if (err instanceof BadRequestError) return Errno.EIO;
  return undefined;
}

/** Formats an error for a log line: class, code and message, never a request or its headers. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const prefix = typeof code === 'string' ? `${err.name} ${code}` : err.name;
  return `${prefix}: ${err.message}`;
}
