/**
 * Earlier revisions of files, for `rev:` paths in get_metadata and download. When the API
 * overwrites or deletes a file, the old contents are hard-linked (or copied, across devices)
 * into the state folder's `revs/` before the data folder changes. The store keeps the newest
 * revisions up to `maxBytes` in total and drops the oldest first.
 * NOTE: a file changed in place on disk, outside the API, loses its old contents, because
 * the emulator only sees the change afterwards.
 */

import { copyFile, link, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { contentHashOfFile } from '../dropbox/content-hash.js';
import type { CatalogRecord } from './catalog.js';

export interface RevisionRecord {
  rev: string;
  pathLower: string;
  record: CatalogRecord;
}

// Enough for a few revisions of the large files the tests and benchmarks use.
export const DEFAULT_MAX_REVISION_BYTES = 512 * 1024 * 1024;

export class RevisionStore {
  private readonly revisions = new Map<string, RevisionRecord>();
  private totalBytes = 0;

  constructor(
    private readonly revsDir: string,
    private readonly maxBytes: number,
  ) {}

  get(rev: string): RevisionRecord | undefined {
    return this.revisions.get(rev);
  }

  fileOf(rev: string): string {
    return join(this.revsDir, rev);
  }

  /** Keeps the contents at `diskPath` as revision `record.rev` of `pathLower`. */
  async keep(diskPath: string, pathLower: string, record: CatalogRecord): Promise<void> {
    if (record.rev === undefined || this.revisions.has(record.rev) || this.maxBytes === 0) {
      return;
    }
    const target = this.fileOf(record.rev);
    try {
      await link(diskPath, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') {
        throw error;
      }
      await copyFile(diskPath, target);
    }
    const contentHash = record.contentHash ?? (await contentHashOfFile(target));
    this.add({ rev: record.rev, pathLower, record: { ...record, contentHash } });
    await this.evict();
  }

  list(): RevisionRecord[] {
    return [...this.revisions.values()];
  }

  restore(records: RevisionRecord[]): void {
    for (const record of records) {
      this.add(record);
    }
  }

  private add(revision: RevisionRecord): void {
    this.revisions.set(revision.rev, revision);
    this.totalBytes += revision.record.size ?? 0;
  }

  private async evict(): Promise<void> {
    for (const [rev, revision] of this.revisions) {
      if (this.totalBytes <= this.maxBytes) {
        return;
      }
      this.revisions.delete(rev);
      this.totalBytes -= revision.record.size ?? 0;
      await rm(this.fileOf(rev), { force: true });
    }
  }
}
