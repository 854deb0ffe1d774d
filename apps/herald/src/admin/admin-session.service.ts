import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AdminSession } from '@herald/protocol';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { Realm } from '../common/bearer';
import { RateLimitedError, UnauthorizedError, UnavailableError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { LoginAttemptsRepository } from './login-attempts.repository';

const AUDIENCE = 'herald-admin';

/**
 * Admin sessions: a password (HERALD_ADMIN_PASSWORD) buys a signed, expiring
 * token. The signing key is derived from the JWT secret and the password, so
 * user tokens are never admin tokens (nor the reverse), and changing the
 * password ends every session.
 */
@Injectable()
export class AdminSessionService {
  private readonly logger = new Logger(AdminSessionService.name);
  private readonly key: Buffer;
  private readonly passwordDigest: Buffer;

  constructor(
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly attempts: LoginAttemptsRepository,
  ) {
    this.passwordDigest = createHash('sha256').update(config.adminPassword).digest();
    this.key = createHmac('sha256', config.jwtSecret)
      .update('herald admin session\0')
      .update(this.passwordDigest)
      .digest();
  }

  get enabled(): boolean {
    return this.config.adminPassword !== '';
  }

  assertEnabled(): void {
    if (!this.enabled) throw new UnavailableError('the admin API is off: set HERALD_ADMIN_PASSWORD to turn it on');
  }

  /** `password`: as the login body carried it (AdminLoginRequestSchema). */
  async login(password: string, address: string): Promise<AdminSession> {
    this.assertEnabled();
    let reserved: { count: number; resetInMs: number };
    try {
      reserved = await this.attempts.reserve(address);
    } catch (error) {
      this.logger.error({ message: 'admin login attempts not counted', error: (error as Error).message });
      throw new UnavailableError('cannot check the login limit now (Redis); retry');
    }
    if (reserved.count > this.config.adminLoginAttempts) {
      const seconds = Math.ceil(reserved.resetInMs / 1000);
      throw new RateLimitedError(`too many wrong passwords from this address; try again in ${seconds} s`, seconds);
    }
    const given = createHash('sha256').update(password).digest();
    if (!timingSafeEqual(given, this.passwordDigest)) {
      this.logger.warn({ message: 'admin login refused', remoteAddress: address });
      // A password is not a bearer credential: the challenge names the login's realm and no error (RFC 6750 §3).
      throw new UnauthorizedError('wrong password', { realm: Realm.AdminLogin });
    }
    await this.attempts.release(address).catch(() => undefined);
    const exp = Math.floor(Date.now() / 1000) + this.config.adminSessionTtlSeconds;
    const token = jwt.sign({ sub: 'admin', aud: AUDIENCE, exp }, this.key, { algorithm: 'HS256', noTimestamp: true });
    this.logger.log({ message: 'admin login', remoteAddress: address });
    return { token, expiresAt: new Date(exp * 1000).toISOString() };
  }

  /** When a valid session ends (epoch ms); 0 for anything else. */
  expiryOf(token: string): number {
    const claims = jwt.decode(token);
    return this.verify(token) && typeof claims === 'object' && typeof claims?.exp === 'number' ? claims.exp * 1000 : 0;
  }

  /** True for a live session token of this deployment's current password. */
  verify(token: string): boolean {
    try {
      jwt.verify(token, this.key, { algorithms: ['HS256'], audience: AUDIENCE });
      return true;
    } catch {
      return false;
    }
  }
}
