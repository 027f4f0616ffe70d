/**
 * files/upload_session/start, append_v2 and finish. `offset` is the number of bytes the
 * session has received; an append or finish naming another offset gets `incorrect_offset`
 * with `correct_offset`, which clients use to resume. A closed session takes no more
 * appends (`closed`), and finish on it may carry no data. Finish commits like files/upload;
 * its errors nest the lookup error under `lookup_failed` and the WriteError under `path`.
 * A failed append or finish leaves the session as it was, bytes and offset, so a client can
 * retry from `correct_offset`. That includes a request cut mid-body, which Dropbox never
 * acknowledged.
 * NOTE: concurrent sessions are accepted as sequential ones; only "no data and no close in
 * start" is checked for them.
 */

import { truncate } from 'node:fs/promises';
import { contentHashOfFile } from '../dropbox/content-hash.js';
import { validateStruct } from './args.js';
import {
  checkCommitFormats,
  checkContentHashFormat,
  COMMIT_INFO_FIELDS,
  parseWriteMode,
  writeComponentsOf,
  type CommitInfoArg,
} from './commit-info.js';
import type { EmulatorContext } from './context.js';
import { badInput, routeError, type ErrorUnion, type HttpError } from './errors.js';
import type { Exchange } from './exchange.js';
import type { FileMetadata } from './metadata.js';
import type { UploadRoute } from './route-table.js';
import { discardBody, receiveBody, type ReceivedBody } from './upload-body.js';
import type { UploadSession } from './upload-sessions.js';
import { commitFileLocked } from './write-ops.js';

const SOURCE = 'HTTP header "Dropbox-API-Arg"';
const APPEND = 'files/upload_session/append:2';
const FINISH = 'files/upload_session/finish';
// Dropbox's largest file through an upload session: 2^41 - 2^22 bytes (about 2 TiB).
const MAX_SESSION_BYTES = 2 ** 41 - 2 ** 22;

interface SessionCursor {
  session_id: string;
  offset: number;
}

export const uploadSessionStartRoute: UploadRoute = {
  name: 'files/upload_session/start',
  style: 'upload',
  auth: 'user',
  arg: { close: { type: 'boolean' }, session_type: { type: 'union' }, content_hash: { type: 'string' } },
  async handle(context, exchange, arg: { close?: boolean; session_type?: unknown; content_hash?: string }) {
    checkContentHashFormat('files/upload_session/start', SOURCE, arg.content_hash);
    const { sessions } = context.state;
    const session = sessions.create();
    // A start whose body never fully arrived leaves no session behind.
    const received = await receiveBody(exchange, session.file, 0).catch(async (error: unknown) => {
      await sessions.remove(session.id);
      throw error;
    });
    const concurrent = arg.session_type === 'concurrent'
      || (arg.session_type as { '.tag'?: string } | undefined)?.['.tag'] === 'concurrent';
    const problem = startProblem(received, concurrent, arg);
    if (problem !== null) {
      await sessions.remove(session.id);
      throw routeError({ '.tag': problem });
    }
    session.offset = received.bytes;
    session.closed = arg.close ?? false;
    return { session_id: session.id };
  },
};

export const uploadSessionAppendRoute: UploadRoute = {
  name: 'files/upload_session/append_v2',
  style: 'upload',
  auth: 'user',
  arg: { cursor: { type: 'struct', required: true }, close: { type: 'boolean' }, content_hash: { type: 'string' } },
  async handle(context, exchange, arg: { cursor: SessionCursor; close?: boolean; content_hash?: string }) {
    checkContentHashFormat(APPEND, SOURCE, arg.content_hash);
    const session = await openSession(context, exchange, arg.cursor, APPEND, (error) => routeError(error));
    try {
      if (session.closed) {
        await discardBody(exchange);
        throw routeError({ '.tag': 'closed' });
      }
      await appendBody(exchange, session, arg.content_hash, (error) => routeError(error));
      session.closed = arg.close ?? false;
      return null;
    } finally {
      session.busy = false;
    }
  },
};

export const uploadSessionFinishRoute: UploadRoute = {
  name: FINISH,
  style: 'upload',
  auth: 'user',
  arg: { cursor: { type: 'struct', required: true }, commit: { type: 'struct', required: true }, content_hash: { type: 'string' } },
  async handle(
    context: EmulatorContext,
    exchange: Exchange,
    arg: { cursor: SessionCursor; commit: CommitInfoArg; content_hash?: string },
  ): Promise<FileMetadata> {
    const commit = validateStruct<CommitInfoArg>(FINISH, SOURCE, COMMIT_INFO_FIELDS, arg.commit);
    const mode = parseWriteMode(FINISH, `${SOURCE}: commit`, commit.mode);
    checkCommitFormats(FINISH, SOURCE, commit.client_modified, arg.content_hash);
    const lookupFailed = (error: ErrorUnion) => routeError({ '.tag': 'lookup_failed', lookup_failed: error });
    const session = await openSession(context, exchange, arg.cursor, FINISH, lookupFailed);
    const offsetBefore = session.offset;
    try {
      await appendBody(exchange, session, arg.content_hash, (error) =>
        error['.tag'] === 'incorrect_offset' ? lookupFailed(error) : routeError(error));
    } catch (error) {
      session.busy = false;
      throw error;
    }
    try {
      if (session.closed && session.offset > offsetBefore) {
        throw lookupFailed({ '.tag': 'closed' });
      }
      const fail = (writeError: ErrorUnion) => routeError({ '.tag': 'path', path: writeError });
      const components = await writeComponentsOf(context, FINISH, commit.path, `${SOURCE}: commit: path`, fail);
      const request = {
        components,
        mode,
        autorename: commit.autorename ?? false,
        strictConflict: commit.strict_conflict ?? false,
        clientModified: commit.client_modified,
        contentHash: await contentHashOfFile(session.file),
        size: session.offset,
      };
      const { account } = context.state;
      const metadata = await account.exclusive(() =>
        commitFileLocked(account, context.quotaBytes, session.file, request, fail));
      await context.state.sessions.remove(session.id);
      return metadata;
    } catch (error) {
      // NOTE: Dropbox does not document whether a failed finish keeps its data; dropping it
      // lets a client retry the same finish, e.g. with another path or mode.
      await truncate(session.file, offsetBefore).catch(() => undefined);
      session.offset = offsetBefore;
      throw error;
    } finally {
      session.busy = false;
    }
  },
};

/** Returns the UploadSessionStartError tag for a start call, or null when it succeeds. */
function startProblem(
  received: ReceivedBody,
  concurrent: boolean,
  arg: { close?: boolean; content_hash?: string },
): string | null {
  if (received.tooLarge) {
    return 'payload_too_large';
  }
  if (concurrent && received.bytes > 0) {
    return 'concurrent_session_data_not_allowed';
  }
  if (concurrent && arg.close === true) {
    return 'concurrent_session_close_not_allowed';
  }
  if (arg.content_hash !== undefined && arg.content_hash !== received.contentHash) {
    return 'content_hash_mismatch';
  }
  return null;
}

// How long a request waits for an overlapping one on the same session, polled in small steps.
const OVERLAP_WAIT_MS = 30_000;
const OVERLAP_POLL_MS = 5;

/**
 * Finds the cursor's session, checks its offset and marks it busy; the caller clears `busy`
 * when done. Drains the body before rejecting.
 */
async function openSession(
  context: EmulatorContext,
  exchange: Exchange,
  cursor: SessionCursor,
  route: string,
  fail: (error: ErrorUnion) => HttpError,
): Promise<UploadSession> {
  checkCursor(route, cursor);
  const session = context.state.sessions.get(cursor.session_id);
  if (session === undefined) {
    await discardBody(exchange);
    throw fail({ '.tag': 'not_found' });
  }
  // An append still in flight has not moved the offset yet, so a second request naming the
  // same offset waits for it, and then finds the offset moved (the first one arrived) or not
  // (it was cut). A client that retries right after a cut connection races the server's own
  // handling of the cut, and this keeps that retry from failing.
  // NOTE: Dropbox does not document its response to overlapping appends, so this is an emulator choice.
  for (let waited = 0; session.busy && waited < OVERLAP_WAIT_MS; waited += OVERLAP_POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, OVERLAP_POLL_MS));
  }
  if (cursor.offset !== session.offset || session.busy) {
    await discardBody(exchange);
    throw fail({ '.tag': 'incorrect_offset', correct_offset: session.offset });
  }
  session.busy = true;
  return session;
}

async function appendBody(
  exchange: Exchange,
  session: UploadSession,
  contentHash: string | undefined,
  fail: (error: ErrorUnion) => HttpError,
): Promise<void> {
  const received = await receiveBody(exchange, session.file, session.offset);
  if (received.tooLarge) {
    throw fail({ '.tag': 'payload_too_large' });
  }
  const problem = session.offset + received.bytes > MAX_SESSION_BYTES ? 'too_large'
    : contentHash !== undefined && contentHash !== received.contentHash ? 'content_hash_mismatch'
      : null;
  if (problem !== null) {
    // The bytes of this call are dropped, so the client can send them again.
    await truncate(session.file, session.offset);
    throw fail({ '.tag': problem });
  }
  session.offset += received.bytes;
}

function checkCursor(route: string, cursor: SessionCursor): void {
  if (typeof cursor.session_id !== 'string') {
    throw badInput(route, `${SOURCE}: cursor: missing required field 'session_id'`);
  }
  if (!Number.isInteger(cursor.offset) || cursor.offset < 0) {
    throw badInput(route, `${SOURCE}: cursor: offset: expected integer, got ${JSON.stringify(cursor.offset)}`);
  }
}
