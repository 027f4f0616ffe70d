/**
 * sshfs-style `-o` mount options: `-o allow_other,ro,rw,uid=N,gid=N,umask=NNN,default_permissions`,
 * given once or several times. allow_other and default_permissions go to FUSE. uid, gid and
 * umask are applied in our own stat results instead of being passed to libfuse, because
 * fuse-native drops an option whose value is falsy, so `uid=0` would be lost.
 */
import { UsageError } from '../errors.js';

export interface MountOptionSet {
  /** FUSE `allow_other`: users other than the daemon's may use the mount. */
  allowOther: boolean;
  /** FUSE `default_permissions`: the kernel checks the reported modes and owners. */
  defaultPermissions: boolean;
  /** Owner shown for every file and folder; the daemon's user when undefined. */
  uid?: number;
  /** Group shown for every file and folder; the daemon's group when undefined. */
  gid?: number;
  /** Permission bits cleared from the reported file and folder modes. */
  umask?: number;
  /** `ro`: the same as --read-only. */
  readOnly?: boolean;
}

export const KNOWN_MOUNT_OPTIONS = ['allow_other', 'default_permissions', 'ro', 'rw', 'uid=N', 'gid=N', 'umask=NNN'];

// uid_t and gid_t are 32-bit, and (uid_t)-1 means "no change" to chown, so it is not a real id.
const MAX_ID = 0xfffffffe;

/**
 * Parses the values of every `-o` given, each a comma-separated list.
 * @throws UsageError naming the option and value that is unknown or invalid.
 */
export function parseMountOptions(values: readonly string[]): MountOptionSet {
  const result: MountOptionSet = { allowOther: false, defaultPermissions: false };
  for (const item of values.flatMap((value) => value.split(','))) {
    const option = item.trim();
    if (option === '') continue;
    const equals = option.indexOf('=');
    const name = equals === -1 ? option : option.slice(0, equals);
    const value = equals === -1 ? undefined : option.slice(equals + 1);
    switch (name) {
      case 'allow_other':
        requireNoValue(name, value);
        result.allowOther = true;
        break;
      case 'default_permissions':
        requireNoValue(name, value);
        result.defaultPermissions = true;
        break;
      case 'ro':
        requireNoValue(name, value);
        result.readOnly = true;
        break;
      case 'rw':
        requireNoValue(name, value);
        result.readOnly = false;
        break;
      case 'uid':
        result.uid = parseId(name, value);
        break;
      case 'gid':
        result.gid = parseId(name, value);
        break;
      case 'umask':
        result.umask = parseUmask(value);
        break;
      default:
        throw new UsageError(
          `mount option -o ${option} is unknown; known options: ${KNOWN_MOUNT_OPTIONS.join(', ')}`,
        );
    }
  }
  return result;
}

/** Returns `mode` with the umask bits cleared, or `mode` itself when no umask was given. */
export function applyUmask(mode: number, options: MountOptionSet): number {
  return options.umask === undefined ? mode : mode & ~options.umask;
}

function requireNoValue(name: string, value: string | undefined): void {
  if (value !== undefined) {
    throw new UsageError(`mount option -o ${name}=${value} is invalid: ${name} takes no value`);
  }
}

function parseId(name: string, value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value) || Number(value) > MAX_ID) {
    throw new UsageError(
      `mount option -o ${name}=${value ?? ''} is invalid: ${name} must be a whole number from 0 to ${MAX_ID}`,
    );
  }
  return Number(value);
}

function parseUmask(value: string | undefined): number {
  if (value === undefined || !/^0?[0-7]{1,3}$/.test(value)) {
    throw new UsageError(`mount option -o umask=${value ?? ''} is invalid: umask must be octal permission bits such as 022`);
  }
  return parseInt(value, 8);
}
