import { describe, expect, it } from 'vitest';
import { ByteWindow } from '../../src/read/byte-window.js';

describe('ByteWindow', () => {
  it('serves bytes it holds and drops the oldest', () => {
    const window = new ByteWindow(8);
    window.append(100, Buffer.from('abcd'));
    window.append(104, Buffer.from('efgh'));
    window.append(108, Buffer.from('ijkl'));
    const out = Buffer.alloc(6);
    expect(window.copyOut(100, out, 0)).toBe(0);
    expect(window.copyOut(104, out, 0)).toBe(6);
    expect(out.toString()).toBe('efghij');
  });

  it('clears on a non-contiguous append', () => {
    const window = new ByteWindow(8);
    window.append(0, Buffer.from('abcd'));
    window.append(50, Buffer.from('xy'));
    const out = Buffer.alloc(2);
    expect(window.copyOut(0, out, 0)).toBe(0);
    expect(window.copyOut(50, out, 0)).toBe(2);
    expect(out.toString()).toBe('xy');
  });

  it('copies only up to the end of the output', () => {
    const window = new ByteWindow(64);
    window.append(0, Buffer.from('abcdefgh'));
    const out = Buffer.alloc(4);
    expect(window.copyOut(2, out, 1)).toBe(3);
    expect(out.subarray(1).toString()).toBe('cde');
  });
});
