/**
 * Runs one FUSE op and replies to the kernel exactly once, with an integer. fuse-native never
 * replies to a request whose callback gets anything but a number, or whose handler throws, and
 * the caller then waits in uninterruptible sleep. So every handler runs through `runOp`, which
 * turns throws and rejections into a negative errno and replies EIO when the op outlives its
 * deadline.
 */
import type { Deadline } from '../fs/deadline.js';
import type { Logger } from '../log/logger.js';
import { Errno, toErrno } from '../fs/errno.js';

/** The callback arguments: a result (0, a count, or a negative errno) and the op's values. */
export type Reply = [number, ...unknown[]];

/**
 * The outcome of a handler: the reply, or a function that makes it, called only if the op has no
 * reply yet. Read uses this to fill the kernel's buffer, which is gone after the reply.
 */
export type Outcome = Reply | (() => Reply);

export interface OpContext {
  log: Logger;
  /** Milliseconds an op may take before it fails with EIO. */
  deadlineMs: number;
  /** Milliseconds close and fsync may take to commit a file; default `deadlineMs`. */
  commitDeadlineMs?: number;
  /** Called with the byte count of every completed read. */
  onBytesRead?: (bytes: number) => void;
}

export function runOp(
  context: OpContext,
  op: string,
  path: string,
  callback: (...args: unknown[]) => void,
  handler: (signal: Deadline) => Promise<Outcome>,
): void {
  const { log, deadlineMs } = context;
  const started = performance.now();
  let answered = false;
  // Aborted when the deadline replies, so that a change still waiting to be made is dropped
  // instead of made after the program got EIO for it.
  const deadline = { aborted: false };

  const answer = (outcome: Outcome) => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    let reply: Reply;
    try {
      reply = typeof outcome === 'function' ? outcome() : outcome;
    } catch (err) {
      reply = [toErrno(err, log, op, path)];
    }
    const result = Number.isInteger(reply[0]) ? reply[0] : -Errno.EIO;
    if (log.isLevelEnabled('debug')) {
      log.debug({ op, path, result, ms: Math.round(performance.now() - started) }, 'fuse');
    }
    try {
      callback(result, ...reply.slice(1));
    } catch (err) {
      log.error({ op, path, err: String(err) }, 'fuse callback failed');
    }
  };

  const timer = setTimeout(() => {
    log.warn({ op, path, deadlineMs }, 'op timed out, returning EIO');
    answer([-Errno.EIO]);
    deadline.aborted = true;
  }, deadlineMs);

  let pending: Promise<Outcome>;
  try {
    pending = handler(deadline);
  } catch (err) {
    pending = Promise.reject(err);
  }
  pending.then(answer, (err: unknown) => answer([toErrno(err, log, op, path)]));
}
