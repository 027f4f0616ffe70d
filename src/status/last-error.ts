/**
 * The last failure the daemon logged at warn level or above, for `dropbox-mount status`.
 */

export interface LastError {
  /** The log message, followed by the error and the path or route when the entry has them. */
  message: string;
  /** ISO 8601 time of the log entry. */
  time: string;
  level: 'warn' | 'error' | 'fatal';
}

// pino's numeric levels.
const WARN = 40;
const ERROR = 50;
const FATAL = 60;

export class LastErrorRecorder {
  last: LastError | undefined;

  /**
   * Records a log call if its level is warn or above. The arguments are pino's: an optional
   * object of fields, then the message.
   */
  record(level: number, args: readonly unknown[]): void {
    if (level < WARN) return;
    const [first, second] = args;
    const fields = typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
    let text = '';
    if (typeof first === 'string') text = first;
    else if (typeof second === 'string') text = second;
    const details: string[] = [];
    for (const key of ['err', 'error', 'op', 'path', 'route']) {
      const value = fields[key];
      if (typeof value === 'string' || typeof value === 'number') details.push(`${key}=${value}`);
    }
    this.last = {
      message: details.length > 0 ? `${text} (${details.join(', ')})` : text,
      time: new Date().toISOString(),
      level: level >= FATAL ? 'fatal' : level >= ERROR ? 'error' : 'warn',
    };
  }
}
