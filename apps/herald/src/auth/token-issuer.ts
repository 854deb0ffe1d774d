import { Inject, Injectable } from '@nestjs/common';
import { tokenRequestSchema, TokenResponse } from '@herald/protocol';
import type { z } from 'zod';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { ZodPipe } from '../common/zod.pipe';
import { UserTokenService } from './user-token.service';

/** A checked token request: `ttlSeconds` defaulted to an hour (or the longest allowed, if shorter). */
export type ValidTokenRequest = z.output<ReturnType<typeof tokenRequestSchema>>;

/** Signs user tokens for checked requests (`{ userId, ttlSeconds? }`, see TokenRequestPipe). */
@Injectable()
export class TokenIssuer {
  constructor(private readonly tokens: UserTokenService) {}

  issue({ userId, ttlSeconds }: ValidTokenRequest): TokenResponse {
    const { token, expiresAt } = this.tokens.sign(userId, ttlSeconds);
    return { token, expiresAt: expiresAt.toISOString() };
  }
}

/** Token requests as the schema reads them: unknown fields named after the others, as this endpoint always did. */
export const TOKEN_PROBLEMS = { unknownFieldsFirst: false };

/** A `POST /v1/tokens` body, within HERALD_TOKEN_MAX_TTL_SECONDS: `@Body(TokenRequestPipe)`. */
@Injectable()
export class TokenRequestPipe extends ZodPipe<ReturnType<typeof tokenRequestSchema>> {
  constructor(@Inject(HERALD_CONFIG) config: HeraldConfig) {
    super(tokenRequestSchema(config.tokenMaxTtlSeconds), TOKEN_PROBLEMS);
  }
}
