/**
 * Stateless access tokens: `sl.<payload>.<mac>`, where the payload contains the expiry time and
 * a nonce, and the MAC is HMAC-SHA256 under a key derived from the app key, app secret and
 * refresh token. An emulator restarted with the same credentials therefore accepts the tokens
 * it issued before, and one started with other credentials rejects them.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type TokenCheck = 'valid' | 'expired' | 'invalid' | 'malformed';

export interface TokenCredentials {
  appKey: string;
  appSecret: string;
  refreshToken: string;
}

// Characters of real Dropbox tokens: base64 and base64url plus '.'. Dropbox rejects a token
// with other characters as malformed (400), but an unknown well-formed one with 401.
const TOKEN_CHARACTERS = /^[A-Za-z0-9._~+/=-]+$/;

const PAYLOAD_BYTES = 16;
const MAC_BYTES = 24;

export class AccessTokens {
  private readonly key: Buffer;

  constructor(
    credentials: TokenCredentials,
    private readonly ttlSeconds: number,
    private readonly now: () => number,
  ) {
    const context = `dropbox-mount emulator access token\0${credentials.appKey}\0${credentials.refreshToken}`;
    this.key = createHmac('sha256', credentials.appSecret).update(context).digest();
  }

  /** Issues a token that expires `ttlSeconds` from now; returns it with its lifetime. */
  issue(): { accessToken: string; expiresIn: number } {
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    payload.writeBigUInt64BE(BigInt(Math.round(this.now() + this.ttlSeconds * 1000)), 0);
    randomBytes(8).copy(payload, 8);
    const token = `sl.${payload.toString('base64url')}.${this.mac(payload).toString('base64url')}`;
    return { accessToken: token, expiresIn: this.ttlSeconds };
  }

  check(token: string): TokenCheck {
    if (!TOKEN_CHARACTERS.test(token)) {
      return 'malformed';
    }
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'sl') {
      return 'invalid';
    }
    const payload = Buffer.from(parts[1] as string, 'base64url');
    const mac = Buffer.from(parts[2] as string, 'base64url');
    if (payload.length !== PAYLOAD_BYTES || mac.length !== MAC_BYTES) {
      return 'invalid';
    }
    if (!timingSafeEqual(mac, this.mac(payload))) {
      return 'invalid';
    }
    const expiresAtMs = Number(payload.readBigUInt64BE(0));
    return this.now() >= expiresAtMs ? 'expired' : 'valid';
  }

  private mac(payload: Buffer): Buffer {
    return createHmac('sha256', this.key).update(payload).digest().subarray(0, MAC_BYTES);
  }
}
