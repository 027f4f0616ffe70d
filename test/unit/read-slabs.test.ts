import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { ByteWindow } from '../../src/read/byte-window.js';
import { MemoryBudget, SLAB_BYTES } from '../../src/read/memory-budget.js';

const KIB = 1024;
// Bytes a window keeps behind when the budget is over.
const MINIMUM = 32 * KIB;

function pattern(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('ByteWindow slabs', () => {
  it('copies written bytes out of the chunk', () => {
    const window = new ByteWindow(1024 * KIB, new MemoryBudget(64 * 1024 * KIB));
    const chunk = Buffer.from('abcdefgh');
    window.write(0, chunk);
    chunk.fill(0);
    const out = Buffer.alloc(8);
    expect(window.take(8, out)).toBe(8);
    expect(out.toString()).toBe('abcdefgh');
  });

  it('charges whole slabs and releases them on clear', () => {
    const budget = new MemoryBudget(64 * 1024 * KIB);
    const window = new ByteWindow(1024 * KIB, budget);
    window.write(0, Buffer.alloc(SLAB_BYTES + 1));
    expect(budget.usedBytes).toBe(2 * SLAB_BYTES);
    window.clear();
    expect(budget.usedBytes).toBe(0);
  });

  it('sizes the last slab to the stream end', () => {
    const budget = new MemoryBudget(64 * 1024 * KIB);
    const window = new ByteWindow(1024 * KIB, budget);
    window.write(0, Buffer.alloc(100), 1000);
    expect(budget.usedBytes).toBe(1000);
  });

  it('drops ahead bytes and keeps taken ones', () => {
    const budget = new MemoryBudget(64 * 1024 * KIB);
    const window = new ByteWindow(1024 * KIB, budget);
    const bytes = pattern(3 * SLAB_BYTES, 1);
    window.write(500, bytes);
    window.take(SLAB_BYTES + 10);
    window.dropAhead();
    expect(window.aheadBytes).toBe(0);
    expect(budget.usedBytes).toBe(2 * SLAB_BYTES);
    const out = Buffer.alloc(SLAB_BYTES + 10);
    expect(window.copyOut(500, out, 0)).toBe(SLAB_BYTES + 10);
    expect(out.equals(bytes.subarray(0, SLAB_BYTES + 10))).toBe(true);
  });

  it('matches a model on random operations', () => {
    const size = 1024 * KIB;
    const content = pattern(size, 7);
    const operation = fc.oneof(
      fc.record({ op: fc.constant('write' as const), bytes: fc.integer({ min: 1, max: 100 * KIB }) }),
      fc.record({ op: fc.constant('jump' as const), offset: fc.integer({ min: 0, max: size - 1 }) }),
      fc.record({ op: fc.constant('take' as const), bytes: fc.integer({ min: 1, max: 200 * KIB }) }),
      fc.record({
        op: fc.constant('copyOut' as const),
        back: fc.oneof(fc.constant(MINIMUM), fc.integer({ min: 1, max: 300 * KIB })),
      }),
      fc.record({ op: fc.constant('dropAhead' as const) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { minLength: 1, maxLength: 60 }), fc.integer({ min: 64, max: 1024 }), (operations, limitKib) => {
        const budget = new MemoryBudget(limitKib * KIB);
        const window = new ByteWindow(256 * KIB, budget, MINIMUM);
        // Model: the taken bytes since the last clear start at `start`, and `writeEnd` follows
        // the ahead bytes.
        let start = 0;
        let end = 0;
        let writeEnd = 0;
        for (const operation of operations) {
          if (operation.op === 'write' || operation.op === 'jump') {
            const at = operation.op === 'jump' ? operation.offset : writeEnd;
            const length = Math.min(operation.op === 'write' ? operation.bytes : 10 * KIB, size - at);
            if (length <= 0) continue;
            if (at !== writeEnd) {
              start = at;
              end = at;
            }
            window.write(at, content.subarray(at, at + length), size);
            writeEnd = at + length;
          } else if (operation.op === 'take') {
            const out = Buffer.alloc(operation.bytes);
            const taken = window.take(operation.bytes, out);
            expect(taken).toBe(Math.min(operation.bytes, writeEnd - end));
            expect(out.subarray(0, taken).equals(content.subarray(end, end + taken))).toBe(true);
            end += taken;
          } else if (operation.op === 'copyOut') {
            const offset = Math.max(0, end - operation.back);
            const out = Buffer.alloc(4 * KIB);
            const copied = window.copyOut(offset, out, 0);
            expect(copied).toBeLessThanOrEqual(Math.min(out.length, Math.max(0, end - offset)));
            expect(out.subarray(0, copied).equals(content.subarray(offset, offset + copied))).toBe(true);
            // The window keeps at least its minimum behind the taken bytes.
            if (offset >= start && end - offset <= MINIMUM) expect(copied).toBe(Math.min(out.length, end - offset));
          } else {
            window.dropAhead();
            writeEnd = end;
          }
          expect(window.aheadBytes).toBe(writeEnd - end);
          expect(window.end).toBe(end);
        }
        window.clear();
        expect(budget.usedBytes).toBe(0);
      }),
      { seed: 20261204, numRuns: 200 },
    );
  });
});

describe('MemoryBudget slab pool', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reuses a released slab', () => {
    const budget = new MemoryBudget(1024 * KIB);
    const slab = budget.acquireSlab();
    budget.releaseSlab(slab);
    expect(budget.acquireSlab()).toBe(slab);
  });

  it('drops free slabs when idle', () => {
    vi.useFakeTimers();
    const budget = new MemoryBudget(1024 * KIB);
    const slab = budget.acquireSlab();
    budget.releaseSlab(slab);
    vi.advanceTimersByTime(5_000);
    const reused = budget.acquireSlab();
    expect(reused).toBe(slab);
    budget.releaseSlab(reused);
    vi.advanceTimersByTime(25_000);
    expect(budget.acquireSlab()).not.toBe(slab);
  });

  it('keeps free slabs only up to its limit and slack', () => {
    const budget = new MemoryBudget(1024 * KIB);
    const first = Array.from({ length: 200 }, () => budget.acquireSlab());
    first.forEach((slab) => budget.releaseSlab(slab));
    expect(budget.usedBytes).toBe(0);
    const firstSet = new Set(first);
    const reused = Array.from({ length: 200 }, () => budget.acquireSlab()).filter((slab) => firstSet.has(slab));
    // Free slabs fit in the limit less the reserve, plus 64 slabs of slack.
    expect(reused.length).toBeGreaterThan(0);
    expect(reused.length).toBeLessThanOrEqual((1024 * KIB) / SLAB_BYTES + 64);
  });
});

describe('MemoryBudget reserve', () => {
  it('starts at three eighths of the limit', () => {
    const budget = new MemoryBudget(800 * KIB);
    expect(budget.reserveBytes).toBe(300 * KIB);
    budget.charge(500 * KIB);
    expect(budget.overLimit).toBe(false);
    budget.charge(1);
    expect(budget.overLimit).toBe(true);
  });

  it('grows with received bytes up to half the limit', () => {
    const budget = new MemoryBudget(800 * KIB);
    budget.countReceived(350 * KIB);
    expect(budget.reserveBytes).toBe(350 * KIB);
    budget.countReceived(100 * KIB);
    expect(budget.reserveBytes).toBe(400 * KIB);
  });
});
