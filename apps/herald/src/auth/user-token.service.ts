import { Inject, Injectable } from '@nestjs/common';
import { USER_ID_PATTERN } from '@herald/protocol';
import jwt from 'jsonwebtoken';
import { createSecretKey, type KeyObject } from 'node:crypto';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';

export interface UserPrincipal {
  userId: string;
  /** Expiry, epoch seconds. */
  expiresAt: number;
}

export type VerifyResult = { ok: true; principal: UserPrincipal } | { ok: false; reason: string };

/** Signs and verifies end-user tokens: JWT HS256, `sub` = user id, `exp` required. */
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
    let claims: string | jwt.JwtPayload;
    try {
      // Only HS256: `alg: none` and every other algorithm are refused.
      claims = jwt.verify(token, this.key, { algorithms: ['HS256'], clockTolerance: 5 });
    } catch (error) {
      if (error instanceof jwt.TokenExpiredError) return { ok: false, reason: 'token expired' };
      if (error instanceof jwt.NotBeforeError) return { ok: false, reason: 'token not yet valid' };
      return { ok: false, reason: 'invalid token' };
    }
    if (typeof claims === 'string') return { ok: false, reason: 'invalid token' };
    if (typeof claims.sub !== 'string' || !USER_ID_PATTERN.test(claims.sub)) {
      return { ok: false, reason: 'token has no valid "sub" (user id)' };
    }
    if (typeof claims.exp !== 'number') return { ok: false, reason: 'token has no "exp"' };
    return { ok: true, principal: { userId: claims.sub, expiresAt: claims.exp } };
  }
}
