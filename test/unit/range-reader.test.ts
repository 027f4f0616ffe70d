import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { constants } from 'node:os';
import { ApiError } from '../../src/dropbox/errors.js';
import { RangeReader } from '../../src/read/range-reader.js';
import type { ByteRange, DropboxClient } from '../../src/dropbox/client.js';
import { silentLogger } from '../../src/log/logger.js';
import { MemoryBudget } from '../../src/read/memory-budget.js';
import { BlockCache } from '../../src/read/block-cache.js';
import { contentHashOf } from '../../src/dropbox/content-hash.js';

interface FakeOptions {
  chunkBytes: number;
  /** Cut the body of the first `cuts` downloads after this many bytes. */
  cutAfterBytes?: number;
  cuts?: number;
}

function fakeClient(content: Buffer, options: FakeOptions) {
  const ranges: ByteRange[] = [];
  let cutsLeft = options.cuts ?? 0;
  const client = {
    async download(_path: string, range: ByteRange) {
      ranges.push(range);
      const { start, end } = range;
      if (start >= content.length || end >= content.length) throw new Error(`range past end: ${start}-${end}`);
      let body = content.subarray(start, end + 1);
      const cut = cutsLeft > 0 && options.cutAfterBytes !== undefined;
      if (cut) {
        cutsLeft--;
        body = body.subarray(0, options.cutAfterBytes);
      }
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += options.chunkBytes) chunks.push(body.subarray(i, i + options.chunkBytes));
      return {
        metadata: { size: content.length },
        offset: start,
        length: end - start + 1,
        body: Readable.from(chunks, { objectMode: false }),
      };
    },
  };
  return { client: client as unknown as DropboxClient, ranges };
}

function makeContent(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const KIB = 1024;

function makeReader(client: DropboxClient, size: number, contentHash?: string, budget = new MemoryBudget(64 * 1024 * KIB)) {
  return new RangeReader({
    client,
    path: '/f',
    downloadPath: 'rev:0123456789',
    file: { id: 'id:f', rev: '0123456789', size, contentHash },
    budget,
    blockCache: new BlockCache(budget, 8 * 1024 * KIB),
    log: silentLogger(),
  });
}

describe('RangeReader', () => {
  it('reads a file start to end with growing ranges', async () => {
    const content = makeContent(40 * 1024 * KIB + 17, 1);
    const { client, ranges } = fakeClient(content, { chunkBytes: 64 * KIB });
    const reader = makeReader(client, content.length);
    const parts: Buffer[] = [];
    for (let pos = 0; pos < content.length; pos += 128 * KIB) parts.push(await reader.read(pos, 128 * KIB));
    expect(Buffer.concat(parts).equals(content)).toBe(true);
    const MIB = 1024 * KIB;
    expect(ranges).toEqual([
      { start: 0, end: MIB - 1 },
      { start: MIB, end: 9 * MIB - 1 },
      { start: 9 * MIB, end: content.length - 1 },
    ]);
  });

  it('fetches at most two blocks for a short run', async () => {
    const content = makeContent(8 * 1024 * KIB, 21);
    const { client, ranges } = fakeClient(content, { chunkBytes: 16 * KIB });
    const reader = makeReader(client, content.length);
    const at = 5 * 1024 * KIB + 8 * KIB;
    await reader.read(at, 4 * KIB);
    await reader.read(at + 4 * KIB, 64 * KIB);
    await reader.read(at + 68 * KIB, 128 * KIB);
    expect(ranges).toEqual([
      { start: 5 * 1024 * KIB, end: 5 * 1024 * KIB + 128 * KIB - 1 },
      { start: 5 * 1024 * KIB + 128 * KIB, end: 5 * 1024 * KIB + 256 * KIB - 1 },
    ]);
  });

  it('serves reordered read-ahead without a new request', async () => {
    const content = makeContent(2 * 1024 * KIB, 2);
    const { client, ranges } = fakeClient(content, { chunkBytes: 32 * KIB });
    const reader = makeReader(client, content.length);
    const order = [0, 2, 1, 3, 5, 4, 7, 6, 8, 10, 9, 11, 12, 15, 14, 13];
    const results = await Promise.all(order.map((block) => reader.read(block * 128 * KIB, 128 * KIB)));
    order.forEach((block, i) => {
      expect(results[i]?.equals(content.subarray(block * 128 * KIB, (block + 1) * 128 * KIB))).toBe(true);
    });
    // Reordered reads cost no request beyond the growing ranges themselves.
    expect(ranges).toEqual([
      { start: 0, end: 1024 * KIB - 1 },
      { start: 1024 * KIB, end: content.length - 1 },
    ]);
  });

  it('opens one range when read-ahead overtakes', async () => {
    const content = makeContent(2 * 1024 * KIB, 7);
    const { client, ranges } = fakeClient(content, { chunkBytes: 32 * KIB });
    const reader = makeReader(client, content.length);
    const order = [1, 0, 3, 2, 4, 5];
    for (const block of order) {
      const data = await reader.read(block * 128 * KIB, 128 * KIB);
      expect(data.equals(content.subarray(block * 128 * KIB, (block + 1) * 128 * KIB))).toBe(true);
    }
    expect(ranges).toEqual([{ start: 0, end: 1024 * KIB - 1 }]);
  });

  it('fetches a small window for a random read', async () => {
    const content = makeContent(8 * 1024 * KIB, 3);
    const { client, ranges } = fakeClient(content, { chunkBytes: 16 * KIB });
    const reader = makeReader(client, content.length);
    await reader.read(0, 4 * KIB);
    const data = await reader.read(5 * 1024 * KIB, 4 * KIB);
    expect(data.equals(content.subarray(5 * 1024 * KIB, 5 * 1024 * KIB + 4 * KIB))).toBe(true);
    expect(ranges[1]).toEqual({ start: 5 * 1024 * KIB, end: 5 * 1024 * KIB + 128 * KIB - 1 });
  });

  it('resumes a cut body at the right offset', async () => {
    const content = makeContent(1024 * KIB, 4);
    const { client, ranges } = fakeClient(content, { chunkBytes: 10_000, cutAfterBytes: 300_000, cuts: 2 });
    const reader = makeReader(client, content.length);
    const parts: Buffer[] = [];
    for (let pos = 0; pos < content.length; pos += 128 * KIB) parts.push(await reader.read(pos, 128 * KIB));
    expect(Buffer.concat(parts).equals(content)).toBe(true);
    expect(ranges.map((range) => range.start)).toEqual([0, 300_000, 600_000]);
  });

  it('serves a random re-read from the block cache', async () => {
    const content = makeContent(8 * 1024 * KIB, 8);
    const { client, ranges } = fakeClient(content, { chunkBytes: 16 * KIB });
    const reader = makeReader(client, content.length);
    const at = 3 * 1024 * KIB + 5000;
    await reader.read(0, 4 * KIB);
    const first = await reader.read(at, 4 * KIB);
    await reader.read(7 * 1024 * KIB, 4 * KIB);
    const again = await reader.read(at + 100, 4 * KIB);
    expect(first.equals(content.subarray(at, at + 4 * KIB))).toBe(true);
    expect(again.equals(content.subarray(at + 100, at + 100 + 4 * KIB))).toBe(true);
    expect(ranges.slice(1)).toEqual([
      { start: 3 * 1024 * KIB, end: 3 * 1024 * KIB + 128 * KIB - 1 },
      { start: 7 * 1024 * KIB, end: 7 * 1024 * KIB + 128 * KIB - 1 },
    ]);
  });

  it('fails the last read on a content hash mismatch', async () => {
    const content = makeContent(600 * KIB, 9);
    const { client } = fakeClient(content, { chunkBytes: 64 * KIB });
    const good = makeReader(client, content.length, contentHashOf(content));
    for (let pos = 0; pos < content.length; pos += 128 * KIB) await good.read(pos, 128 * KIB);
    const bad = makeReader(client, content.length, contentHashOf(Buffer.from('other')));
    await bad.read(0, 128 * KIB);
    let error: unknown;
    for (let pos = 128 * KIB; pos < content.length && !error; pos += 128 * KIB) {
      error = await bad.read(pos, 128 * KIB).then(() => undefined, (err: unknown) => err);
    }
    expect(error).toMatchObject({ errno: constants.errno.EIO });
  });

  it('serves a first read past 1 MiB', async () => {
    const content = makeContent(3 * 1024 * KIB, 11);
    for (const at of [1024 * KIB, 1536 * KIB, 2048 * KIB + 5]) {
      const { client, ranges } = fakeClient(content, { chunkBytes: 64 * KIB });
      const reader = makeReader(client, content.length);
      const data = await reader.read(at, 4 * KIB);
      expect(data.equals(content.subarray(at, at + 4 * KIB))).toBe(true);
      const blockStart = at - (at % (128 * KIB));
      expect(ranges).toEqual([{ start: blockStart, end: blockStart + 128 * KIB - 1 }]);
    }
  });

  it('checks the hash across a cached block', async () => {
    const content = makeContent(3 * 1024 * KIB, 12);
    const readAll = async (contentHash: string) => {
      const reader = makeReader(fakeClient(content, { chunkBytes: 64 * KIB }).client, content.length, contentHash);
      // Two random reads cache the block at 1 MiB, which the in-order read then uses.
      await reader.read(2560 * KIB, 4 * KIB);
      await reader.read(1024 * KIB + 1000, 4 * KIB);
      for (let pos = 0; pos < content.length; pos += 128 * KIB) await reader.read(pos, 128 * KIB);
    };
    await expect(readAll(contentHashOf(content))).resolves.toBeUndefined();
    await expect(readAll(contentHashOf(Buffer.from('other')))).rejects.toMatchObject({ errno: constants.errno.EIO });
  });

  it('resumes three cuts in a row', async () => {
    const content = makeContent(512 * KIB, 13);
    const threeCuts = fakeClient(content, { chunkBytes: 16 * KIB, cutAfterBytes: 40 * KIB, cuts: 3 });
    const data = await makeReader(threeCuts.client, content.length).read(0, 512 * KIB);
    expect(data.equals(content)).toBe(true);
    const fourCuts = fakeClient(content, { chunkBytes: 16 * KIB, cutAfterBytes: 40 * KIB, cuts: 4 });
    await expect(makeReader(fourCuts.client, content.length).read(300 * KIB, 4 * KIB)).rejects.toThrow();
  });

  it('reports a vanished revision as ESTALE', async () => {
    const client = {
      async download() {
        throw new ApiError('files/download', 409, ['path', 'not_found'], {});
      },
    } as unknown as DropboxClient;
    const reader = makeReader(client, 1000);
    await expect(reader.read(0, 100)).rejects.toMatchObject({ errno: constants.errno.ESTALE });
  });

  it('shrinks kept bytes under memory pressure', async () => {
    const content = makeContent(4 * 1024 * KIB, 10);
    const budget = new MemoryBudget(1024 * KIB);
    const readers = Array.from({ length: 8 }, () => makeReader(fakeClient(content, { chunkBytes: 32 * KIB }).client, content.length, undefined, budget));
    for (let pos = 0; pos < content.length; pos += 128 * KIB) {
      for (const reader of readers) {
        const data = await reader.read(pos, 128 * KIB);
        expect(data.equals(content.subarray(pos, pos + 128 * KIB))).toBe(true);
      }
    }
    // Each window keeps at least one 128 KiB request plus the chunk that crosses it.
    expect(budget.peakBytes).toBeLessThanOrEqual(1024 * KIB + 8 * 160 * KIB);
    readers.forEach((reader) => reader.close());
    expect(budget.usedBytes).toBe(0);
  });

  it('returns short reads at the end and empty past it', async () => {
    const content = makeContent(1000, 5);
    const { client } = fakeClient(content, { chunkBytes: 100 });
    const reader = makeReader(client, content.length);
    expect((await reader.read(900, 4096)).equals(content.subarray(900))).toBe(true);
    expect((await reader.read(1000, 4096)).length).toBe(0);
    expect((await reader.read(5000, 4096)).length).toBe(0);
  });

  it('matches a model on random read sequences', async () => {
    const size = 3 * 1024 * KIB + 123;
    const content = makeContent(size, 6);
    // Half the positions fall on 128 KiB boundaries, where ranges and blocks start and end.
    const position = fc.oneof(
      fc.integer({ min: 0, max: size + 1000 }),
      fc.integer({ min: 0, max: 25 }).map((block) => block * 128 * KIB),
    );
    const read = fc.record({
      position,
      length: fc.integer({ min: 1, max: 256 * KIB }),
    });
    const sequentialRun = fc
      .record({ start: position, count: fc.integer({ min: 1, max: 12 }) })
      .map(({ start, count }) =>
        Array.from({ length: count }, (_, i) => ({ position: start + i * 128 * KIB, length: 128 * KIB })),
      );
    const sequence = fc.array(fc.oneof(read.map((r) => [r]), sequentialRun), { minLength: 1, maxLength: 20 });
    await fc.assert(
      fc.asyncProperty(sequence, fc.integer({ min: 4096, max: 200_000 }), async (groups, chunkBytes) => {
        const { client, ranges } = fakeClient(content, { chunkBytes });
        const reader = makeReader(client, size, contentHashOf(content));
        const reads = groups.flat();
        const results = await Promise.all(reads.map((r) => reader.read(r.position, r.length)));
        reads.forEach((r, i) => {
          const expected = content.subarray(Math.min(r.position, size), Math.min(r.position + r.length, size));
          expect(results[i]?.equals(expected)).toBe(true);
        });
        for (const range of ranges) expect(range.end).toBeLessThan(size);
        reader.close();
      }),
      { seed: 20261204, numRuns: 60 },
    );
  });
});
