/**
 * The state folder: where the emulator keeps what is not file content, outside the data
 * folder so that no listing or watcher of the data folder ever lists it.
 * - `catalog.json`: the catalog and revision list, written atomically after changes.
 * - `tmp/`: uploads and copies in progress; finished files are renamed into the data folder,
 *   so a reader of the data folder sees either the old or the new file, never a partial one.
 * - `revs/`: contents of earlier revisions, for `rev:` paths.
 * - `trash/`: deleted folders, renamed out of the tree at once and removed afterwards.
 *
 * The default location is `$XDG_STATE_HOME/dropbox-mount-emulator/<key>` when XDG_STATE_HOME
 * is set, else `<os.tmpdir()>/dropbox-mount-emulator-state/<key>`, where the key is a hash of
 * the data folder's real path, so each data folder keeps its own ids across restarts. Each
 * state folder records its data folder in `data-folder.txt`; opening a default state folder
 * removes the sibling state folders whose data folder no longer exists, so tests that serve
 * temporary data folders do not fill the temp folder.
 *
 * rename(2) cannot cross filesystems. When the state folder is on another device than the
 * data folder, temporary files go to `.dropbox.cache/` at the data folder's root instead.
 * That is the name the Dropbox desktop client uses for its own cache, and listings skip it.
 */

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { CatalogSnapshot } from './catalog.js';
import type { RevisionRecord } from './revisions.js';

export const DATA_CACHE_NAME = '.dropbox.cache';

export interface PersistedState {
  version: 1;
  dataDir: string;
  catalog: CatalogSnapshot;
  revisions: RevisionRecord[];
}

export interface StateFolder {
  root: string;
  tmpDir: string;
  revsDir: string;
  trashDir: string;
  catalogFile: string;
}

/** Returns the default state folder for `dataDir`. */
export async function defaultStateDir(dataDir: string): Promise<string> {
  const real = await realpath(dataDir);
  const key = createHash('sha256').update(real).digest('hex').slice(0, 16);
  const xdg = process.env.XDG_STATE_HOME;
  if (xdg !== undefined && xdg !== '') {
    return join(xdg, 'dropbox-mount-emulator', key);
  }
  return join(tmpdir(), 'dropbox-mount-emulator-state', key);
}

const DATA_FOLDER_MARKER = 'data-folder.txt';

/** Removes default state folders next to `stateDir` whose data folder was deleted. */
export async function removeOrphanedStateDirs(stateDir: string): Promise<void> {
  const parent = dirname(stateDir);
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names) {
    const candidate = join(parent, name);
    const dataDir = await readFile(join(candidate, DATA_FOLDER_MARKER), 'utf8').catch(() => null);
    if (candidate !== stateDir && dataDir !== null && !(await exists(dataDir))) {
      // Best effort: two emulators starting at once may remove the same folder, and the loser
      // gets ENOTEMPTY or ENOENT. A folder left behind is removed by a later start.
      await rm(candidate, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Creates the state folder's layout and picks the temporary folder (see the file comment). */
export async function openStateFolder(root: string, dataDir: string): Promise<StateFolder> {
  const revsDir = join(root, 'revs');
  await mkdir(revsDir, { recursive: true });
  await writeFile(join(root, DATA_FOLDER_MARKER), dataDir);
  let tmpDir = join(root, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  if ((await stat(tmpDir)).dev !== (await stat(dataDir)).dev) {
    tmpDir = join(dataDir, DATA_CACHE_NAME, 'tmp');
    await mkdir(tmpDir, { recursive: true });
  }
  const trashDir = join(tmpDir, '..', 'trash');
  await rm(trashDir, { recursive: true, force: true });
  await mkdir(trashDir, { recursive: true });
  return { root, tmpDir, revsDir, trashDir, catalogFile: join(root, 'catalog.json') };
}

/** Reads the saved state; null when there is none or it belongs to another data folder. */
export async function loadState(folder: StateFolder, dataDir: string): Promise<PersistedState | null> {
  let text: string;
  try {
    text = await readFile(folder.catalogFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return null;
    }
    throw error;
  }
  const state = JSON.parse(text) as PersistedState;
  return state.version === 1 && state.dataDir === dataDir ? state : null;
}

/** Writes the state to a temporary file and renames it over `catalog.json`. */
export async function saveState(folder: StateFolder, state: PersistedState): Promise<void> {
  const temporary = `${folder.catalogFile}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(state));
  await rename(temporary, folder.catalogFile);
}
