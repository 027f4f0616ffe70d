/** The log of finished calls, which tests read to count API calls and check arguments. */

import type { CallRecord } from './types.js';

// Caps memory in long benchmark runs; the oldest records are dropped first.
const MAX_RECORDS = 100_000;

export class CallLog {
  private records: CallRecord[] = [];

  add(record: CallRecord): void {
    this.records.push(record);
    if (this.records.length > MAX_RECORDS) {
      this.records.splice(0, this.records.length - MAX_RECORDS);
    }
  }

  /** Returns a copy, so callers cannot change the log. */
  list(): CallRecord[] {
    return this.records.map((record) => ({ ...record }));
  }

  clear(): void {
    this.records = [];
  }
}
