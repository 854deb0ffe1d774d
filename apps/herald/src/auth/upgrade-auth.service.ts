import { Inject, Injectable } from '@nestjs/common';
import { MAX_TOKEN_LENGTH } from '@herald/protocol';
import type { IncomingMessage } from 'node:http';
import { bearerOf, Realm } from '../common/bearer';
import { ForbiddenError, UnauthorizedError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { UserPrincipal, UserTokenService } from './user-token.service';

export type UpgradeDecision =
  { ok: true; principal: UserPrincipal } | { ok: false; error: UnauthorizedError | ForbiddenError };

/**
 * Decides a WebSocket upgrade before it happens: the Origin must be allowed
 * and the user token (from `?token=` for browsers, or `Authorization: Bearer`)
 * valid. A refused upgrade never becomes a socket.
 */
@Injectable()
export class UpgradeAuthService {
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;

  constructor(
    private readonly tokens: UserTokenService,
    @Inject(HERALD_CONFIG) config: HeraldConfig,
  ) {
    this.anyOrigin = config.allowedOrigins.includes('*');
    this.origins = new Set(config.allowedOrigins.map((o) => o.toLowerCase()));
  }

  /** HERALD_ALLOWED_ORIGINS, matched exactly (case-insensitive); `*` allows any. */
  originAllowed(origin: string): boolean {
    return this.anyOrigin || this.origins.has(origin.toLowerCase());
  }

  decide(request: IncomingMessage): UpgradeDecision {
    const origin = request.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin)) {
      return { ok: false, error: new ForbiddenError('Origin not allowed') };
    }
    const token = tokenOf(request);
    if (!token) return { ok: false, error: new UnauthorizedError('Missing token', { realm: Realm.Herald }) };
    if (token.length > MAX_TOKEN_LENGTH) return invalidToken('token too long');
    const result = this.tokens.verify(token);
    if (!result.ok) return invalidToken(result.reason);
    return { ok: true, principal: result.principal };
  }
}

function invalidToken(message: string): UpgradeDecision {
  return { ok: false, error: new UnauthorizedError(message, { realm: Realm.Herald, invalidToken: true }) };
}

function tokenOf(request: IncomingMessage): string | null {
  const bearer = bearerOf(request);
  if (bearer) return bearer;
  const url = new URL(request.url ?? '/', 'http://localhost');
  return url.searchParams.get('token');
}
