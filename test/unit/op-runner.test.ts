import { afterEach, describe, expect, it, vi } from 'vitest';
import { constants } from 'node:os';
import { runOp } from '../../src/fuse/op-runner.js';
import { FsError } from '../../src/fs/errno.js';
import { ApiError } from '../../src/dropbox/errors.js';
import { silentLogger } from '../../src/log/logger.js';

const { errno } = constants;
const context = { log: silentLogger(), deadlineMs: 1000 };

function capture() {
  const calls: unknown[][] = [];
  return { calls, cb: (...args: unknown[]) => calls.push(args) };
}

describe('runOp', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers a value', async () => {
    const { calls, cb } = capture();
    runOp(context, 'open', '/a', cb, async () => [0, 7]);
    await vi.waitFor(() => expect(calls).toEqual([[0, 7]]));
  });

  it('answers a synchronous throw with EIO', async () => {
    const { calls, cb } = capture();
    runOp(context, 'open', '/a', cb, () => {
      throw new TypeError('bug');
    });
    await vi.waitFor(() => expect(calls).toEqual([[-errno.EIO]]));
  });

  it('maps FsError and Dropbox tags to errno', async () => {
    const { calls, cb } = capture();
    runOp(context, 'getattr', '/a', cb, async () => {
      throw new FsError(errno.ENOTDIR, 'x');
    });
    runOp(context, 'getattr', '/b', cb, async () => {
      throw new ApiError('files/get_metadata', 409, ['path', 'not_found'], {});
    });
    await vi.waitFor(() => expect(calls).toEqual([[-errno.ENOTDIR], [-errno.ENOENT]]));
  });

  it('replaces a non-integer result with EIO', async () => {
    const { calls, cb } = capture();
    runOp(context, 'open', '/a', cb, async () => [null as unknown as number]);
    await vi.waitFor(() => expect(calls).toEqual([[-errno.EIO]]));
  });

  it('answers EIO at the deadline and ignores the late result', async () => {
    vi.useFakeTimers();
    const { calls, cb } = capture();
    let finish: (value: [number]) => void = () => {};
    const late = vi.fn(() => [5] as [number]);
    runOp(context, 'read', '/a', cb, () => new Promise((resolve) => (finish = () => resolve(late))));
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual([[-errno.EIO]]);
    finish([0]);
    await vi.runAllTimersAsync();
    expect(calls).toHaveLength(1);
    expect(late).not.toHaveBeenCalled();
  });
});
