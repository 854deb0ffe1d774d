import { Inject, Injectable } from '@nestjs/common';
import { MAX_TOKEN_LENGTH, WS_BEARER_PREFIX } from '@herald/protocol';
import type { IncomingMessage } from 'node:http';
import { bearerOf, Realm } from '../common/bearer';
import { ForbiddenError, HeraldError, UnauthorizedError, UnavailableError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { TicketService } from './ticket.service';
import { UserPrincipal, UserTokenService } from './user-token.service';

export type UpgradeDecision = { ok: true; principal: UserPrincipal } | { ok: false; error: HeraldError };

/**
 * Decides a WebSocket upgrade (or an SSE stream) before it happens: the Origin must be allowed, and the
 * user token (`Authorization: Bearer`, the `herald.bearer.` subprotocol entry browsers send (ADR 0013),
 * or the discouraged `?token=`) valid, or a one-time `?ticket=` unused (ADR 0006). A refused upgrade
 * never becomes a socket. Without a ticket the decision is made at once; a ticket is consumed in Redis.
 */
@Injectable()
export class UpgradeAuthService {
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;

  constructor(
    private readonly tokens: UserTokenService,
    private readonly tickets: TicketService,
    @Inject(HERALD_CONFIG) config: HeraldConfig,
  ) {
    this.anyOrigin = config.allowedOrigins.includes('*');
    this.origins = new Set(config.allowedOrigins.map((o) => o.toLowerCase()));
  }

  /** HERALD_ALLOWED_ORIGINS, matched exactly (case-insensitive); `*` allows any. */
  originAllowed(origin: string): boolean {
    return this.anyOrigin || this.origins.has(origin.toLowerCase());
  }

  decide(request: IncomingMessage): UpgradeDecision | Promise<UpgradeDecision> {
    const refused = this.originRefusal(request);
    if (refused) return { ok: false, error: refused };
    const { token, ticket } = credentialOf(request);
    if (ticket !== null) return this.byTicket(ticket, request.headers.origin);
    if (!token) return { ok: false, error: new UnauthorizedError('Missing token', { realm: Realm.Herald }) };
    return this.byToken(token);
  }

  /**
   * The user of `Authorization: Bearer <user token>` from an allowed Origin, or the refusal: for minting
   * a ticket, where a credential in the URL is not taken.
   */
  bearerPrincipal(request: IncomingMessage): UserPrincipal {
    const refused = this.originRefusal(request);
    if (refused) throw refused;
    const token = bearerOf(request);
    if (!token) {
      throw new UnauthorizedError('missing "Authorization: Bearer <user token>" header', { realm: Realm.Herald });
    }
    const decision = this.byToken(token);
    if (!decision.ok) throw decision.error;
    return decision.principal;
  }

  /**
   * The `?ticket=` of a request whose credential is a ticket and whose Origin is allowed, to be consumed
   * later (`byTicket`) by a route that first checks its load; null otherwise (decide() applies).
   */
  deferredTicket(request: IncomingMessage): string | null {
    if (this.originRefusal(request)) return null;
    return credentialOf(request).ticket;
  }

  /** A deferred ticket's user, or its refusal (401, or 503 when Redis does not answer). */
  async ticketPrincipal(request: IncomingMessage, ticket: string): Promise<UserPrincipal> {
    const decision = await this.byTicket(ticket, request.headers.origin);
    if (!decision.ok) throw decision.error;
    return decision.principal;
  }

  private originRefusal(request: IncomingMessage): ForbiddenError | null {
    const origin = request.headers.origin;
    return origin !== undefined && !this.originAllowed(origin) ? new ForbiddenError('Origin not allowed') : null;
  }

  private byToken(token: string): UpgradeDecision {
    if (token.length > MAX_TOKEN_LENGTH) return invalidToken('token too long');
    const result = this.tokens.verify(token);
    if (!result.ok) return invalidToken(result.reason);
    return { ok: true, principal: result.principal };
  }

  private async byTicket(ticket: string, origin: string | undefined): Promise<UpgradeDecision> {
    try {
      const { subject, expiresAt } = await this.tickets.consume(ticket, 'user', origin);
      return { ok: true, principal: { userId: subject, expiresAt } };
    } catch (error) {
      if (error instanceof UnauthorizedError || error instanceof UnavailableError) return { ok: false, error };
      throw error;
    }
  }
}

function invalidToken(message: string): UpgradeDecision {
  return { ok: false, error: new UnauthorizedError(message, { realm: Realm.Herald, invalidToken: true }) };
}

/**
 * The Bearer token, else the token of a `herald.bearer.` subprotocol entry, else `?ticket=`, else `?token=`:
 * a request that sends a header is never asked for more.
 */
function credentialOf(request: IncomingMessage): { token: string | null; ticket: string | null } {
  const bearer = bearerOf(request) ?? subprotocolBearerOf(request);
  if (bearer) return { token: bearer, ticket: null };
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  if (query < 0) return { token: null, ticket: null };
  const params = new URLSearchParams(url.slice(query + 1));
  const ticket = params.get('ticket');
  return ticket !== null ? { token: null, ticket } : { token: params.get('token'), ticket: null };
}

/** The token of the first `herald.bearer.<token>` entry of `Sec-WebSocket-Protocol`, if any (ADR 0013). */
function subprotocolBearerOf(request: IncomingMessage): string | null {
  const header = request.headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return null;
  for (const entry of header.split(',')) {
    const protocol = entry.trim();
    if (protocol.startsWith(WS_BEARER_PREFIX) && protocol.length > WS_BEARER_PREFIX.length) {
      return protocol.slice(WS_BEARER_PREFIX.length);
    }
  }
  return null;
}
