/**
 * Upload sessions (files/upload_session/*). Each session appends to its own file in the
 * state folder's tmp/; finish renames that file into the data folder. Sessions live in
 * memory: after a restart their ids are `not_found`, as after Dropbox's 7-day expiry.
 */

import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface UploadSession {
  id: string;
  file: string;
  /** Bytes received so far: the offset the next append must name. */
  offset: number;
  closed: boolean;
  /** True while an append or finish is using the session. */
  busy: boolean;
  createdAtMs: number;
}

// Dropbox keeps an upload session for 7 days.
const SESSION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>();

  constructor(
    private readonly tmpDir: string,
    private readonly now: () => number,
  ) {}

  create(): UploadSession {
    const id = 'pid_upload_session:' + randomBytes(24).toString('base64url');
    const session = {
      id,
      file: join(this.tmpDir, `session-${randomBytes(12).toString('hex')}`),
      offset: 0,
      closed: false,
      busy: false,
      createdAtMs: this.now(),
    };
    this.sessions.set(id, session);
    return session;
  }

  /** Returns the session, or undefined when it is unknown or expired. */
  get(id: string): UploadSession | undefined {
    const session = this.sessions.get(id);
    if (session !== undefined && this.now() - session.createdAtMs > SESSION_TTL_MS) {
      void this.remove(id);
      return undefined;
    }
    return session;
  }

  /** Forgets a session and deletes its file, if the file still exists. */
  async remove(id: string): Promise<void> {
    const session = this.sessions.get(id);
    this.sessions.delete(id);
    if (session !== undefined) {
      await rm(session.file, { force: true });
    }
  }

  async clear(): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.remove(id)));
  }
}
