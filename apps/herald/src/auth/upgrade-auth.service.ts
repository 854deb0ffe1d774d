import { Inject, Injectable } from '@nestjs/common';
import { MAX_TOKEN_LENGTH } from '@herald/protocol';
import { bearerOf } from '../common/bearer';
import type { IncomingMessage } from 'node:http';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { UserPrincipal, UserTokenService } from './user-token.service';

export type UpgradeDecision =
  { ok: true; principal: UserPrincipal } | { ok: false; status: 401 | 403; message: string };

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
      return { ok: false, status: 403, message: 'Origin not allowed' };
    }
    const token = tokenOf(request);
    if (!token) return { ok: false, status: 401, message: 'Missing token' };
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, status: 401, message: 'token too long' };
    const result = this.tokens.verify(token);
    if (!result.ok) return { ok: false, status: 401, message: result.reason };
    return { ok: true, principal: result.principal };
  }
}

function tokenOf(request: IncomingMessage): string | null {
  const bearer = bearerOf(request);
  if (bearer) return bearer;
  const url = new URL(request.url ?? '/', 'http://localhost');
  return url.searchParams.get('token');
}
