/**
 * Chooses which read-only opens bypass the kernel page cache (FUSE direct_io), so that a handle
 * never reads pages that a handle of another revision left there.
 *
 * The kernel keeps one page cache per file, shared by every handle, whatever revision each
 * handle reads. With `auto_cache`, libfuse 2.9 drops those pages at an open only when it has
 * seen the file's size or mtime change since the previous open. That covers a file replaced
 * while closed. It does not cover a handle of the old revision that stays open, because its
 * reads fill the cache with old pages again after the open that dropped them. A page-cache
 * handle of the new revision would then read old pages, and the old handle new ones.
 *
 * So an open of revision R bypasses the page cache while a page-cache handle of another
 * revision is open. From then on the file is "mixed": the cache may hold pages of another
 * revision, so later opens of R bypass it too, even after the old handles closed. The mark
 * stays until an open finds a revision other than R with no page-cache handle of another
 * revision open. That open is the first of a new revision, so auto_cache drops the pages there
 * under the same condition as for any remote change.
 *
 * Only read-only handles pinned to a rev are registered. Handles of a file being written always
 * use the page cache (DropboxFilesystem.open).
 *
 * The caller names the file by its mount path, not its Dropbox id, because the page cache belongs
 * to libfuse's node for the path. A file deleted and uploaded again at the same path gets a new
 * id but keeps that node, so a revision here is the pair of id and rev.
 */
export class PageCacheGuard {
  // Page-cache (not direct_io) handles open per file id: rev → handle count.
  readonly #cachedOpens = new Map<string, Map<string, number>>();
  // Mixed files: file id → the rev whose opens bypass the page cache.
  readonly #mixed = new Map<string, string>();

  /**
   * Registers an open of `rev` of the file `fileId` and returns true when the handle must use
   * direct_io. Call `close` with the same arguments and the result when the handle is released.
   */
  open(fileId: string, rev: string): boolean {
    const cached = this.#cachedOpens.get(fileId);
    const otherRevOpen = cached !== undefined && [...cached.keys()].some((openRev) => openRev !== rev);
    if (otherRevOpen) {
      this.#mixed.set(fileId, rev);
      return true;
    }
    const mixedRev = this.#mixed.get(fileId);
    if (mixedRev === rev) return true;
    if (mixedRev !== undefined) this.#mixed.delete(fileId);
    const counts = cached ?? new Map<string, number>();
    counts.set(rev, (counts.get(rev) ?? 0) + 1);
    this.#cachedOpens.set(fileId, counts);
    return false;
  }

  /** Unregisters a handle registered with `open`. `directIo` is the value `open` returned. */
  close(fileId: string, rev: string, directIo: boolean): void {
    if (directIo) return;
    const counts = this.#cachedOpens.get(fileId);
    const count = counts?.get(rev);
    if (counts === undefined || count === undefined) return;
    if (count > 1) counts.set(rev, count - 1);
    else counts.delete(rev);
    if (counts.size === 0) this.#cachedOpens.delete(fileId);
  }
}
