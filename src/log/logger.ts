import { pino, destination, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Creates the process logger: one JSON object per line on stderr, which journald and `jq` read
 * as they are. Header and body fields are redacted by path as a second line of defence; the
 * first is that credentials travel as `Secret` and request logs never include headers.
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['headers.authorization', '*.headers.authorization', 'authorization', '*.token'],
        censor: '[redacted]',
      },
    },
    destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything, for library use and unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
