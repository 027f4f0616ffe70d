import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONTENT_HASH_BLOCK_BYTES,
  ContentHasher,
  contentHashOf,
  contentHashOfFile,
  contentHashOfHandle,
} from '../../src/dropbox/content-hash.js';

// Vectors computed with Dropbox's reference algorithm.
const VECTORS: Array<{ name: string; data: () => Buffer; hash: string }> = [
  {
    name: 'empty',
    data: () => Buffer.alloc(0),
    hash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  },
  {
    name: 'hello',
    data: () => Buffer.from('hello'),
    hash: '9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50',
  },
  {
    name: '4 MiB of zeros',
    data: () => Buffer.alloc(4 * 1024 * 1024),
    hash: 'c7e946d101855255d919ef0c70718633adf77d3dfb3adeeecf5d0cb4e951be58',
  },
  {
    name: '4 MiB + 1 of zeros',
    data: () => Buffer.alloc(4 * 1024 * 1024 + 1),
    hash: '14a4d47f23a30177885d9820122f17d2d3a55fe63f7f5c27b95f689e0b2accd6',
  },
];

describe('ContentHasher', () => {
  it.each(VECTORS)('hashes $name', ({ data, hash }) => {
    expect(contentHashOf(data())).toBe(hash);
  });

  it('gives the same hash for any chunking', () => {
    const data = Buffer.alloc(2 * CONTENT_HASH_BLOCK_BYTES + 12345, 7);
    const whole = contentHashOf(data);
    for (const chunkBytes of [1000, CONTENT_HASH_BLOCK_BYTES - 1, CONTENT_HASH_BLOCK_BYTES, 3 * 1024 * 1024 + 5]) {
      const hasher = new ContentHasher();
      for (let offset = 0; offset < data.length; offset += chunkBytes) {
        hasher.update(data.subarray(offset, offset + chunkBytes));
      }
      expect(hasher.digest(), `chunks of ${chunkBytes}`).toBe(whole);
    }
  });

  it('ignores empty chunks', () => {
    const hasher = new ContentHasher().update(Buffer.alloc(0)).update(Buffer.from('hello')).update(Buffer.alloc(0));
    expect(hasher.digest()).toBe(VECTORS[1]?.hash);
  });

  it('rejects use after digest', () => {
    const hasher = new ContentHasher();
    hasher.digest();
    expect(() => hasher.digest()).toThrow(/digest called twice/);
    expect(() => hasher.update(Buffer.from('x'))).toThrow(/after digest/);
  });
});

describe('contentHashOfFile', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'content-hash-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(VECTORS)('hashes a file: $name', async ({ name, data, hash }) => {
    const file = join(dir, name.replace(/\W/g, '_'));
    await writeFile(file, data());
    expect(await contentHashOfFile(file)).toBe(hash);
  });

  it('hashes an open handle from offset 0', async () => {
    const file = join(dir, 'handle');
    await writeFile(file, 'hello');
    const handle = await open(file, 'r');
    try {
      await handle.read(Buffer.alloc(3), 0, 3, null);
      expect(await contentHashOfHandle(handle)).toBe(VECTORS[1]?.hash);
    } finally {
      await handle.close();
    }
  });

  it('rejects a missing file with ENOENT', async () => {
    await expect(contentHashOfFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stops when the signal is aborted', async () => {
    const file = join(dir, 'aborted');
    await writeFile(file, 'hello');
    await expect(contentHashOfFile(file, { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
  });
});
