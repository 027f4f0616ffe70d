/**
 * Dropbox API v2 emulator: an HTTP server on loopback that serves a local folder as a Dropbox
 * account, so tests, the demo and benchmarks exercise the daemon against the real wire
 * format. One origin serves every Dropbox host (api, content, notify), dispatching by path.
 *
 * Served now: /oauth2/token (and /1/oauth2/token) with the refresh-token and
 * authorization-code (PKCE) grants, /oauth2/authorize, files/list_folder (+continue,
 * get_latest_cursor, longpoll), files/get_metadata, files/download, files/export,
 * files/get_temporary_link, files/upload, files/upload_session/*, files/create_folder_v2,
 * files/delete_v2, files/move_v2, files/copy_v2, users/get_space_usage,
 * users/get_current_account, and the control endpoints under /_emulator (control.ts).
 *
 * Invariants: nothing Dropbox-specific is stored inside the data folder, except temporary
 * files in `.dropbox.cache/` when the state folder is on another filesystem, and listings
 * skip that folder. Ids, revs and times live in the catalog in the state folder
 * (catalog.ts, account-state.ts); every change is journaled (journal.ts). Access tokens are
 * stateless, so they stay valid across a restart with the same credentials.
 */

export { startEmulator } from './server.js';
export { writeDaemonConfig } from './daemon-config.js';
export type { CallRecord, Emulator, EmulatorOptions } from './types.js';
