/**
 * files/upload: one request carries the whole file (at most 150 MiB). The body is streamed
 * to tmp/ in the state folder while it is hashed, then committed with commitFileLocked.
 * Errors use UploadError: `{".tag":"path","reason":WriteError,"upload_session_id":…}` with
 * the UploadWriteFailed fields inlined, `payload_too_large` and `content_hash_mismatch`.
 */

import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkCommitFormats,
  COMMIT_INFO_FIELDS,
  CONTENT_HASH_FIELD,
  parseWriteMode,
  writeComponentsOf,
  type CommitInfoArg,
} from './commit-info.js';
import { contentArgSource } from './args.js';
import type { EmulatorContext } from './context.js';
import { routeError, type ErrorUnion } from './errors.js';
import type { Exchange } from './exchange.js';
import type { FileMetadata } from './metadata.js';
import type { UploadRoute } from './route-table.js';
import { receiveBody } from './upload-body.js';
import { commitFileLocked } from './write-ops.js';

const UPLOAD = 'files/upload';

type UploadArg = CommitInfoArg & { content_hash?: string };

export const uploadRoute: UploadRoute = {
  name: UPLOAD,
  style: 'upload',
  auth: 'user',
  arg: { ...COMMIT_INFO_FIELDS, ...CONTENT_HASH_FIELD },
  async handle(context: EmulatorContext, exchange: Exchange, arg: UploadArg): Promise<FileMetadata> {
    const source = contentArgSource(exchange.req.headers);
    const mode = parseWriteMode(UPLOAD, source, arg.mode);
    checkCommitFormats(UPLOAD, source, arg.client_modified, arg.content_hash);
    // UploadWriteFailed names a session id even for a single-request upload.
    const sessionId = 'pid_upload_session:' + randomBytes(24).toString('base64url');
    const fail = (reason: ErrorUnion) => routeError({ '.tag': 'path', reason, upload_session_id: sessionId });
    const components = await writeComponentsOf(context, UPLOAD, arg.path, `${source}: path`, fail);
    const { account } = context.state;
    const tempFile = join(account.stateFolder.tmpDir, `upload-${randomBytes(12).toString('hex')}`);
    try {
      const body = await receiveBody(exchange, tempFile, 0);
      if (body.tooLarge) {
        throw routeError({ '.tag': 'payload_too_large' });
      }
      if (arg.content_hash !== undefined && arg.content_hash !== body.contentHash) {
        throw routeError({ '.tag': 'content_hash_mismatch' });
      }
      const request = {
        components,
        mode,
        autorename: arg.autorename ?? false,
        strictConflict: arg.strict_conflict ?? false,
        clientModified: arg.client_modified,
        contentHash: body.contentHash,
        size: body.bytes,
      };
      return await account.exclusive(() =>
        commitFileLocked(account, context.quotaBytes, tempFile, request, fail));
    } finally {
      await rm(tempFile, { force: true });
    }
  },
};
