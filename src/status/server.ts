/**
 * The status socket: a Unix stream socket on which the daemon writes one JSON StatusSnapshot
 * to each client and closes the connection. The socket has mode 0600 in a folder of mode 0700,
 * so only the daemon's user can connect.
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { StatusSnapshot } from './snapshot.js';

export interface StatusServer {
  path: string;
  /** Stops listening and removes the socket file. */
  close(): Promise<void>;
}

/**
 * Listens on `path`, replacing a socket file left by a daemon that was killed.
 * @throws when the folder cannot be created or made private, or the socket cannot be bound.
 */
export async function startStatusServer(
  path: string,
  snapshot: () => StatusSnapshot,
  log: Logger,
): Promise<StatusServer> {
  await preparePrivateDir(dirname(path));
  await removeStaleSocket(path, log);
  const server = createServer((socket) => {
    socket.on('error', (err) => log.debug({ err: err.message }, 'status client connection failed'));
    socket.end(`${JSON.stringify(snapshot())}\n`);
  });
  server.on('error', (err) => log.warn({ err: err.message, socket: path }, 'status socket failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  log.debug({ socket: path }, 'status socket listening');
  return { path, close: () => closeServer(server, path) };
}

async function preparePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  const uid = process.getuid?.();
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid)) {
    throw new Error(`status socket folder ${dir} is not a folder owned by this user; remove it and restart`);
  }
  if ((info.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

async function removeStaleSocket(path: string, log: Logger): Promise<void> {
  try {
    const info = await lstat(path);
    if (!info.isSocket()) {
      throw new Error(`status socket path ${path} exists and is not a socket; remove it and restart`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  log.info({ socket: path }, 'replacing a status socket left by an earlier daemon');
  await unlink(path);
}

async function closeServer(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
