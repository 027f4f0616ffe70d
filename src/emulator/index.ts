/**
 * Dropbox API v2 emulator: an HTTP server on loopback that serves a local folder as a Dropbox
 * account, so tests, the demo and benchmarks exercise the daemon against the real wire
 * format. One origin serves every Dropbox host (api, content, notify), dispatching by path.
 *
 * Served now: /oauth2/token (and /1/oauth2/token), files/list_folder,
 * files/list_folder/continue, files/get_metadata, files/download, users/get_space_usage,
 * users/get_current_account, and the /_emulator/calls control endpoint.
 *
 * Invariants: nothing Dropbox-specific is stored inside the data folder. Ids come from inode
 * and birth time, and revs from inode, mtime and size. Content hashes are cached in memory by
 * file version. Access tokens are stateless, so they stay valid across a restart with the
 * same credentials.
 */

export { startEmulator } from './server.js';
export { writeDaemonConfig } from './daemon-config.js';
export type { CallRecord, Emulator, EmulatorOptions } from './types.js';
