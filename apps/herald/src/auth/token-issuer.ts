import { Inject, Injectable } from '@nestjs/common';
import { TokenResponse, USER_ID_PATTERN } from '@herald/protocol';
import { BadRequestError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { UserTokenService } from './user-token.service';

/** Checks a token request (`{ userId, ttlSeconds? }`) and signs the token. */
@Injectable()
export class TokenIssuer {
  constructor(
    private readonly tokens: UserTokenService,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
  ) {}

  /** `maxTtlSeconds` narrows HERALD_TOKEN_MAX_TTL_SECONDS (the demo's short tokens). */
  issue(body: unknown, maxTtlSeconds = this.config.tokenMaxTtlSeconds): TokenResponse {
    const problems: { field: string; reason: string }[] = [];
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<
      string,
      unknown
    >;
    if (typeof b.userId !== 'string' || !USER_ID_PATTERN.test(b.userId)) {
      problems.push({ field: 'userId', reason: 'required: 1-128 characters of letters, digits and _ . @ : -' });
    }
    const max = Math.min(maxTtlSeconds, this.config.tokenMaxTtlSeconds);
    const ttl = b.ttlSeconds === undefined ? Math.min(3600, max) : b.ttlSeconds;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > max) {
      problems.push({ field: 'ttlSeconds', reason: `must be a whole number from 1 to ${max}` });
    }
    for (const key of Object.keys(b))
      if (key !== 'userId' && key !== 'ttlSeconds') problems.push({ field: key, reason: 'unknown field' });
    if (problems.length > 0)
      throw new BadRequestError(problems.map((p) => `${p.field}: ${p.reason}`).join('; '), problems);
    const { token, expiresAt } = this.tokens.sign(b.userId as string, ttl as number);
    return { token, expiresAt: expiresAt.toISOString() };
  }
}
