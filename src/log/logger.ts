import { pino, destination, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /**
   * Called with pino's numeric level and the arguments of every log call at or above the
   * logger's level, before the line is written. The status command's last error comes from it.
   */
  onLog?: (level: number, args: readonly unknown[]) => void;
}

/**
 * Creates the process logger: one JSON object per line on stderr, which journald and `jq` read
 * as they are. Header and body fields are redacted by path as a second line of defence. The
 * first is that credentials travel as `Secret` and request logs never include headers.
 */
export function createLogger(level: LogLevel = 'info', options: LoggerOptions = {}): Logger {
  const { onLog } = options;
  return pino(
    {
      level,
      // pino reads `hooks.logMethod` unconditionally, so the key is left out when unused.
      ...(onLog && {
        hooks: {
          logMethod(args, method, levelNumber) {
            onLog(levelNumber, args);
            method.apply(this, args);
          },
        },
      }),
      base: { pid: process.pid },
      redact: {
        paths: ['headers.authorization', '*.headers.authorization', 'authorization', '*.token'],
        censor: '[redacted]',
      },
    },
    destination({ fd: 2, sync: true }),
  );
}

/** Creates a logger that drops everything, for library use and unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
