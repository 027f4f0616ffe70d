import { describe, expect, it } from 'vitest';
import type { DropboxClient } from '../../src/dropbox/client.js';
import { placeholderStatfs, SpaceUsageCache, toStatfs } from '../../src/fs/statfs.js';
import { silentLogger } from '../../src/log/logger.js';

describe('toStatfs', () => {
  it('reports an individual quota in 4 KiB blocks', () => {
    const result = toStatfs({ used: 4096 * 10, allocation: { '.tag': 'individual', allocated: 4096 * 100 } });
    expect(result.bsize).toBe(4096);
    expect(result.blocks).toBe(100);
    expect(result.bfree).toBe(90);
    expect(result.bavail).toBe(90);
  });

  it('reports zero free when usage exceeds the quota', () => {
    const result = toStatfs({ used: 4096 * 150, allocation: { '.tag': 'individual', allocated: 4096 * 100 } });
    expect(result.blocks).toBe(100);
    expect(result.bfree).toBe(0);
  });

  it('grows the block size so counts fit in 32 bits', () => {
    const petabyte = 2 ** 50;
    const result = toStatfs({ used: 0, allocation: { '.tag': 'individual', allocated: petabyte } });
    expect(result.blocks).toBeLessThanOrEqual(0xffffffff);
    expect(result.blocks * result.bsize).toBe(petabyte);
  });

  it('uses the team pool when no member limit is set', () => {
    const result = toStatfs({
      used: 4096,
      allocation: { '.tag': 'team', used: 4096 * 50, allocated: 4096 * 1000, user_within_team_space_allocated: 0 },
    });
    expect(result.blocks).toBe(1000);
    expect(result.bfree).toBe(950);
  });
});

describe('SpaceUsageCache', () => {
  function clientWith(rpc: () => Promise<unknown>): DropboxClient {
    return { rpc } as unknown as DropboxClient;
  }

  it('answers a placeholder while the first fetch hangs', async () => {
    let calls = 0;
    const cache = new SpaceUsageCache(
      clientWith(() => {
        calls++;
        return new Promise(() => {});
      }),
      silentLogger(),
    );
    const started = performance.now();
    const first = await cache.statfs();
    const second = await cache.statfs();
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(first).toEqual(placeholderStatfs());
    expect(second).toEqual(placeholderStatfs());
    // The second call waits on the fetch already in flight instead of starting another.
    expect(calls).toBe(1);
  });

  it('answers a placeholder when the first fetch fails', async () => {
    const cache = new SpaceUsageCache(clientWith(() => Promise.reject(new Error('connect ECONNREFUSED'))), silentLogger());
    expect(await cache.statfs()).toEqual(placeholderStatfs());
  });

  it('answers the quota once fetched', async () => {
    const usage = { used: 4096, allocation: { '.tag': 'individual', allocated: 4096 * 10 } };
    const cache = new SpaceUsageCache(clientWith(() => Promise.resolve(usage)), silentLogger());
    const result = await cache.statfs();
    expect(result.blocks).toBe(10);
    expect(result.bfree).toBe(9);
  });
});
