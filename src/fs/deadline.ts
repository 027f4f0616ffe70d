/**
 * The deadline of one filesystem op, as handlers see it: `aborted` turns true once the op has
 * replied EIO for running too long, so that a change still waiting is dropped. A plain object
 * rather than an AbortSignal, because every op gets one and an AbortController costs
 * microseconds to make (2.5 µs each, measured on Node 20), tens of thousands of times per `find`.
 */
export interface Deadline {
  readonly aborted: boolean;
}
