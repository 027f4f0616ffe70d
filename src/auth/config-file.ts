/** Writing the config file that `dropbox-mount login` creates. */
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UsageError } from '../errors.js';

/** The JSON fields login writes; `apiUrl`, `contentUrl` and `notifyUrl` only for a test server. */
export interface ConfigFileFields {
  appKey: string;
  appSecret?: string;
  refreshToken: string;
  root: string;
  apiUrl?: string;
  contentUrl?: string;
  notifyUrl?: string;
}

/**
 * Writes `fields` to `file` with mode 0600. Folders that do not exist yet are created with mode
 * 0700. Without `overwrite` an existing file is never replaced: the file is created with O_EXCL,
 * so a file that appears during the login is kept too. With `overwrite` the new file is written
 * under a temporary name and renamed over the old one, so a reader never sees half a file.
 * @throws UsageError when `file` exists and `overwrite` is false.
 */
export async function writeConfigFile(file: string, fields: ConfigFileFields, overwrite: boolean): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const text = `${JSON.stringify(fields, null, 2)}\n`;
  if (!overwrite) {
    try {
      await writeFile(file, text, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw existingConfigError(file);
      throw err;
    }
    await chmod(file, 0o600);
    return;
  }
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    await chmod(temporary, 0o600);
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** The error for an existing config file that login must not replace. */
export function existingConfigError(file: string): UsageError {
  return new UsageError(
    `config file ${file} already exists; pass --force to replace it, or --config FILE to write another file`,
  );
}
