import { describe, expect, it } from 'vitest';
import { applyUmask, parseMountOptions } from '../../src/fuse/mount-options.js';
import { UsageError } from '../../src/errors.js';

describe('parseMountOptions', () => {
  it('merges repeated comma lists', () => {
    const options = parseMountOptions(['allow_other,ro', 'uid=0,gid=1000', 'umask=022,default_permissions']);
    expect(options).toEqual({
      allowOther: true,
      defaultPermissions: true,
      uid: 0,
      gid: 1000,
      umask: 0o022,
      readOnly: true,
    });
  });

  it('defaults to no options', () => {
    expect(parseMountOptions([])).toEqual({ allowOther: false, defaultPermissions: false });
    expect(parseMountOptions([',,'])).toEqual({ allowOther: false, defaultPermissions: false });
  });

  it('ro and rw set read-only, the last one wins', () => {
    expect(parseMountOptions(['ro']).readOnly).toBe(true);
    expect(parseMountOptions(['ro,rw']).readOnly).toBe(false);
    expect(parseMountOptions(['rw', 'ro']).readOnly).toBe(true);
  });

  it.each([
    ['uid=abc', 'mount option -o uid=abc is invalid'],
    ['uid=-1', 'mount option -o uid=-1 is invalid'],
    ['gid=4294967295', 'mount option -o gid=4294967295 is invalid'],
    ['uid', 'mount option -o uid= is invalid'],
    ['umask=999', 'mount option -o umask=999 is invalid'],
    ['umask=0x22', 'mount option -o umask=0x22 is invalid'],
    ['ro=1', 'mount option -o ro=1 is invalid: ro takes no value'],
    ['allow_other=yes', 'allow_other takes no value'],
  ])('rejects %s', (value, message) => {
    expect(() => parseMountOptions([value])).toThrow(UsageError);
    expect(() => parseMountOptions([value])).toThrow(message);
  });

  it('rejects unknown options listing known ones', () => {
    expect(() => parseMountOptions(['ro,noatime'])).toThrow(
      'mount option -o noatime is unknown; known options: allow_other, default_permissions, ro, rw, uid=N, gid=N, umask=NNN',
    );
  });
});

describe('applyUmask', () => {
  it('clears umask bits', () => {
    expect(applyUmask(0o555, { allowOther: false, defaultPermissions: false, umask: 0o027 })).toBe(0o550);
  });

  it('keeps the mode without umask', () => {
    expect(applyUmask(0o444, { allowOther: false, defaultPermissions: false })).toBe(0o444);
  });
});
