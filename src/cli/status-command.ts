/**
 * `dropbox-mount status MOUNTPOINT`: prints the live figures of the daemon that serves
 * MOUNTPOINT, read from its status socket.
 */
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { DropboxMountError } from '../errors.js';
import { NoDaemonError, readStatus } from '../status/client.js';
import { formatStatus } from '../status/snapshot.js';

interface StatusArgs {
  mountpoint: string;
  json: boolean;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status <mountpoint>',
  describe: 'Print live figures (API calls, caches, memory, last error) of the daemon serving MOUNTPOINT',
  builder: (yargs) =>
    yargs
      .positional('mountpoint', { type: 'string', demandOption: true, describe: 'Mountpoint of a running daemon' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object instead of text' }),
  handler: async (args) => {
    const mountpoint = resolve(args.mountpoint);
    try {
      const status = await readStatus(mountpoint);
      process.stdout.write(args.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    } catch (err) {
      if (err instanceof NoDaemonError) throw new DropboxMountError('NO_DAEMON', err.message);
      throw err;
    }
  },
};
