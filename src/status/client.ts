/**
 * Reads a StatusSnapshot from the status socket of the daemon that serves a mountpoint.
 */
import { createConnection } from 'node:net';
import { statusSocketCandidates } from './socket-path.js';
import type { StatusSnapshot } from './snapshot.js';

const STATUS_TIMEOUT_MS = 5_000;

/** Raised when no daemon listens on the mountpoint's status socket. */
export class NoDaemonError extends Error {}

/**
 * Connects to the status socket of `mountpoint`, trying each folder a daemon may use, and
 * returns the snapshot the daemon sends.
 * @throws NoDaemonError when no socket exists or nothing listens on one; Error on a timeout or
 *   a reply that is not a snapshot.
 */
export async function readStatus(mountpoint: string): Promise<StatusSnapshot> {
  const candidates = statusSocketCandidates(mountpoint);
  for (const path of candidates) {
    try {
      return await readStatusFrom(path, mountpoint);
    } catch (err) {
      if (!(err instanceof NoDaemonError)) throw err;
    }
  }
  throw new NoDaemonError(
    `no dropbox-mount daemon serves ${mountpoint} (no status socket listening at ${candidates.join(' or ')})`,
  );
}

function readStatusFrom(path: string, mountpoint: string): Promise<StatusSnapshot> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.setTimeout(STATUS_TIMEOUT_MS, () => {
      socket.destroy();
      reject(new Error(`the daemon serving ${mountpoint} timed out: no response on ${path} within ${STATUS_TIMEOUT_MS / 1000} s`));
    });
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new NoDaemonError(`nothing listens at ${path}`));
        return;
      }
      reject(new Error(`reading status from ${path} failed: ${err.message}`));
    });
    socket.on('end', () => {
      try {
        resolve(JSON.parse(text) as StatusSnapshot);
      } catch {
        reject(new Error(`the status socket ${path} sent a reply that is not JSON`));
      }
    });
  });
}
