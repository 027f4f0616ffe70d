/**
 * Path helpers shared by the cache and the filesystem. A FUSE path is absolute within the mount
 * (`/` is the mount root). Dropbox compares paths ignoring case and Unicode normalization, so the
 * cache key of a path is its NFC form, lower-cased.
 */

/** Returns the cache key of a mount path or a name. */
export function keyOf(pathOrName: string): string {
  return pathOrName.normalize('NFC').toLowerCase();
}

/** Splits `/a/b/c` into `/a/b` and `c`. The root has no parent and is not passed here. */
export function splitPath(path: string): { parent: string; name: string } {
  const slash = path.lastIndexOf('/');
  return { parent: slash <= 0 ? '/' : path.slice(0, slash), name: path.slice(slash + 1) };
}

/** Joins the Dropbox path of the mount root (`""` or `/Some/Folder`) and a mount path. */
export function toDropboxPath(rootPath: string, path: string): string {
  return path === '/' ? rootPath : rootPath + path;
}

/**
 * Returns the cache key of the mount path that a Dropbox `path_lower` names, `/` for the mount
 * root itself, or undefined for a path outside the root. `rootKey` is the key of the root's
 * Dropbox path (`""` for the whole account).
 */
export function mountKeyOf(rootKey: string, pathLower: string): string | undefined {
  const key = keyOf(pathLower);
  if (key === rootKey) return '/';
  if (!key.startsWith(`${rootKey}/`)) return undefined;
  return key.slice(rootKey.length);
}
