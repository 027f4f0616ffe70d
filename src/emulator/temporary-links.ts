/**
 * Links from files/get_temporary_link, served by the emulator at /_emulator/link/<token>.
 * A link names a file by id and expires after its lifetime (4 hours by default, as on
 * Dropbox); an expired link returns 410 Gone.
 */

import { randomBytes } from 'node:crypto';

export const LINK_PATH_PREFIX = '/_emulator/link/';

export interface TemporaryLink {
  id: string;
  expiresAtMs: number;
}

export class TemporaryLinks {
  private readonly links = new Map<string, TemporaryLink>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** Returns the URL path of a new link to the file with `id`. */
  create(id: string): string {
    const token = randomBytes(24).toString('base64url');
    this.links.set(token, { id, expiresAtMs: this.now() + this.ttlMs });
    return LINK_PATH_PREFIX + token;
  }

  /** Returns the link's file id, 'expired', or undefined for an unknown token. */
  resolve(token: string): string | 'expired' | undefined {
    const link = this.links.get(token);
    if (link === undefined) {
      return undefined;
    }
    return this.now() >= link.expiresAtMs ? 'expired' : link.id;
  }
}
