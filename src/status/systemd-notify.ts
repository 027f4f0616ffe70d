/**
 * sd_notify for units with Type=notify. Node has no Unix datagram sockets in core, so the
 * message goes through the `systemd-notify` program. It sends on behalf of its parent, this
 * daemon, when it runs as root, and from its own PID otherwise, which is why the units set
 * NotifyAccess=all. By default it also waits until the service manager has read the message,
 * so the message is not lost when systemd-notify exits first.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../log/logger.js';

const NOTIFY_TIMEOUT_MS = 10_000;

/**
 * Sends `READY=1` or `STOPPING=1` when $NOTIFY_SOCKET is set, and does nothing otherwise. A
 * failure is logged at warn and never thrown, because the mount works without it.
 */
export function notifySystemd(state: 'READY=1' | 'STOPPING=1', log: Logger): Promise<void> {
  const socket = process.env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return Promise.resolve();
  const args = state === 'READY=1' ? ['--ready'] : [state];
  return new Promise((resolve) => {
    execFile('systemd-notify', args, { timeout: NOTIFY_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (err) {
        log.warn({ err: stderr.trim() || err.message, state }, 'systemd-notify failed; systemd may not see the service state');
      } else {
        log.debug({ state }, 'systemd notified');
      }
      resolve();
    });
  });
}
