/** The daemon's config file for a running emulator. */

import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Emulator } from './types.js';

/**
 * Writes the daemon config JSON for `emulator` to `file` with mode 0600, creating parent
 * folders. The file contains the app secret and refresh token, hence the mode. `root` is the
 * Dropbox folder the daemon mounts; '' is the whole account.
 */
export async function writeDaemonConfig(emulator: Emulator, file: string, root = ''): Promise<void> {
  const config = {
    appKey: emulator.appKey,
    appSecret: emulator.appSecret,
    refreshToken: emulator.refreshToken,
    root,
    apiUrl: emulator.url,
    contentUrl: emulator.url,
    notifyUrl: emulator.url,
  };
  await mkdir(dirname(file), { recursive: true });
  // Writing a private temporary file and renaming it means the secret is never readable by
  // others, even when `file` already exists with a wider mode.
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, file);
}
