/**
 * Exports of files that cannot be downloaded (Paper docs), by file id and rev. Each revision is
 * exported once: the bytes are kept in memory up to a byte limit, least recently used first out,
 * and the size of every export is kept apart so that a `stat` after eviction costs no call.
 * Concurrent requests for one revision share one export.
 */
import { LRUCache } from 'lru-cache';
import type { DropboxClient } from '../dropbox/client.js';
import type { Node } from './metadata-cache.js';

/** Default bytes of exports kept in memory. */
export const DEFAULT_EXPORT_CACHE_BYTES = 64 * 1024 * 1024;
// Sizes are a few dozen bytes each, so many more of them are kept than exports.
const MAX_KEPT_SIZES = 100_000;

export class ExportCache {
  readonly #client: DropboxClient;
  readonly #bodies: LRUCache<string, Buffer>;
  readonly #sizes = new LRUCache<string, number>({ max: MAX_KEPT_SIZES });
  readonly #pending = new Map<string, Promise<Buffer>>();
  /** Exports made, for tests. */
  exports = 0;

  constructor(client: DropboxClient, maxBytes = DEFAULT_EXPORT_CACHE_BYTES) {
    this.#client = client;
    this.#bodies = new LRUCache({ maxSize: maxBytes, sizeCalculation: (body) => Math.max(1, body.length) });
  }

  /** Returns the size of the node's export, exporting it when the size is not known yet. */
  async size(node: Node): Promise<number> {
    const known = this.#sizes.get(keyOf(node));
    if (known !== undefined) return known;
    return (await this.bytes(node)).length;
  }

  /**
   * Returns the bytes of the node's export, from memory or from a new `files/export` of its id.
   * An export larger than the byte limit is returned but not kept.
   */
  async bytes(node: Node): Promise<Buffer> {
    const key = keyOf(node);
    const cached = this.#bodies.get(key);
    if (cached !== undefined) return cached;
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    const promise = this.#export(node, key).finally(() => this.#pending.delete(key));
    this.#pending.set(key, promise);
    return promise;
  }

  async #export(node: Node, key: string): Promise<Buffer> {
    this.exports++;
    // NOTE: files/export takes no `rev:` path, so a revision saved between the listing and
    // this call is exported in its place and kept under the listed rev until the next change.
    const result = await this.#client.exportFile(node.id, node.exportFormat);
    this.#sizes.set(key, result.body.length);
    this.#bodies.set(key, result.body);
    return result.body;
  }
}

function keyOf(node: Node): string {
  return `${node.id}@${node.rev ?? ''}@${node.exportFormat ?? ''}`;
}
