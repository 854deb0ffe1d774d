import { Inject, Injectable } from '@nestjs/common';
import { USER_ID_PATTERN } from '@herald/protocol';
import jwt from 'jsonwebtoken';
import { createSecretKey, type KeyObject } from 'node:crypto';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { Hs256Refusal, verifyHs256 } from './hs256';

export interface UserPrincipal {
  userId: string;
  /** Expiry, epoch seconds. */
  expiresAt: number;
}

export type VerifyResult = { ok: true; principal: UserPrincipal } | { ok: false; reason: string };

/** Signs (jsonwebtoken) and verifies (`verifyHs256`) end-user tokens: JWT HS256, `sub` = user id, `exp` required. */
@Injectable()
export class UserTokenService {
  /**
   * The secret as a key, made once: given a string, jsonwebtoken first tries it as a PEM key and makes a
   * secret key of it only when that throws, on every sign and verify (a third of a connection's setup CPU).
   */
  private readonly key: KeyObject;

  constructor(@Inject(HERALD_CONFIG) config: HeraldConfig) {
    this.key = createSecretKey(Buffer.from(config.jwtSecret, 'utf8'));
  }

  sign(userId: string, ttlSeconds: number): { token: string; expiresAt: Date } {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + ttlSeconds;
    const token = jwt.sign({ sub: userId, iat: now, exp }, this.key, {
      algorithm: 'HS256',
      noTimestamp: true,
    });
    return { token, expiresAt: new Date(exp * 1000) };
  }

  verify(token: string): VerifyResult {
    // Only HS256: `alg: none` and every other algorithm are refused.
    const verified = verifyHs256(token, this.key, Math.floor(Date.now() / 1000), CLOCK_TOLERANCE_SECONDS);
    if (!verified.ok) return { ok: false, reason: REFUSALS[verified.refusal] };
    const claims = verified.claims;
    if (typeof claims.sub !== 'string' || !USER_ID_PATTERN.test(claims.sub)) {
      return { ok: false, reason: 'token has no valid "sub" (user id)' };
    }
    if (typeof claims.exp !== 'number') return { ok: false, reason: 'token has no "exp"' };
    return { ok: true, principal: { userId: claims.sub, expiresAt: claims.exp } };
  }
}

/** Clocks out of step by this much are forgiven, for `exp` and `nbf`. */
const CLOCK_TOLERANCE_SECONDS = 5;

const REFUSALS: Record<Hs256Refusal, string> = {
  invalid: 'invalid token',
  expired: 'token expired',
  'not-yet-valid': 'token not yet valid',
};
