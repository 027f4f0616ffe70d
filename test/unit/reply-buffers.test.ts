import { describe, expect, it } from 'vitest';
import { REPLY_BUFFER_BYTES, acquireReplyBuffer, releaseReplyBuffer } from '../../src/read/reply-buffers.js';

describe('reply buffers', () => {
  it('reuses a released buffer', () => {
    const first = acquireReplyBuffer(4096);
    releaseReplyBuffer(first);
    const second = acquireReplyBuffer(REPLY_BUFFER_BYTES);
    expect(second.buffer).toBe(first.buffer);
    expect(second.length).toBe(REPLY_BUFFER_BYTES);
    releaseReplyBuffer(second);
  });

  it('never hands one buffer to two holders', () => {
    const first = acquireReplyBuffer(100);
    releaseReplyBuffer(first);
    releaseReplyBuffer(first);
    const a = acquireReplyBuffer(100);
    const b = acquireReplyBuffer(100);
    expect(a.buffer).not.toBe(b.buffer);
    releaseReplyBuffer(a);
    releaseReplyBuffer(b);
  });

  it('allocates reads larger than a pooled buffer', () => {
    const large = acquireReplyBuffer(REPLY_BUFFER_BYTES + 1);
    expect(large.length).toBe(REPLY_BUFFER_BYTES + 1);
    releaseReplyBuffer(large);
    expect(acquireReplyBuffer(10).buffer).not.toBe(large.buffer);
  });

  it('ignores buffers it did not make', () => {
    const foreign = Buffer.alloc(REPLY_BUFFER_BYTES);
    releaseReplyBuffer(foreign);
    expect(acquireReplyBuffer(10).buffer).not.toBe(foreign.buffer);
  });
});
