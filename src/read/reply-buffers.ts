/**
 * Reusable buffers for read replies. Every kernel read gets a 128 KiB buffer that lives only
 * until its bytes are copied into the kernel's reply. Allocating a new one each time left tens
 * of MiB of dead buffers waiting for the garbage collector when many files were read at once. A buffer returns to the pool only once, so two reads never share one.
 */

/** Size of a pooled buffer: the largest read the kernel sends through libfuse 2. */
export const REPLY_BUFFER_BYTES = 128 * 1024;
// Enough for 64 readers with two reads in flight each; more are allocated and left to the GC.
const MAX_POOLED = 128;

const free: Buffer[] = [];
const inUse = new WeakSet<ArrayBufferLike>();

/** Returns a buffer of `size` bytes, from the pool when it fits in a pooled buffer. */
export function acquireReplyBuffer(size: number): Buffer {
  if (size > REPLY_BUFFER_BYTES) return Buffer.allocUnsafe(size);
  const buffer = free.pop() ?? Buffer.allocUnsafeSlow(REPLY_BUFFER_BYTES);
  inUse.add(buffer.buffer);
  return buffer.subarray(0, size);
}

/** Gives back a buffer from acquireReplyBuffer, or a view of one; other buffers are ignored. */
export function releaseReplyBuffer(view: Buffer): void {
  if (!inUse.has(view.buffer)) return;
  inUse.delete(view.buffer);
  if (free.length < MAX_POOLED) free.push(Buffer.from(view.buffer, 0, REPLY_BUFFER_BYTES));
}
