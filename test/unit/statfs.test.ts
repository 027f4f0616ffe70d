import { describe, expect, it } from 'vitest';
import { toStatfs } from '../../src/fs/statfs.js';

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
