import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { TicketService } from '../auth/ticket.service';
import { bearerOf, Realm } from '../common/bearer';
import { UnauthorizedError, UnavailableError } from '../common/errors';
import { DrainState } from '../common/lifecycle.module';
import { AdminSessionService } from './admin-session.service';

/** An admin request that passed the guard: when its session (or the session its ticket came from) ends, epoch ms. */
export type AdminRequest = FastifyRequest & { adminSessionExpiresAt?: number };

/** The login: 503 while the admin API is off, before its body is read. */
@Injectable()
export class AdminEnabledGuard implements CanActivate {
  constructor(private readonly sessions: AdminSessionService) {}

  canActivate(): boolean {
    this.sessions.assertEnabled();
    return true;
  }
}

/**
 * Every admin endpoint but the login: `Authorization: Bearer <session>`; on the
 * event stream (EventSource cannot send headers) a one-time `?ticket=` from
 * `POST /admin/api/tickets`, or the discouraged `?token=`. API keys, user tokens
 * and user tickets are not admin sessions.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(
    private readonly sessions: AdminSessionService,
    private readonly tickets: TicketService,
    private readonly drain: DrainState,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    this.sessions.assertEnabled();
    const request = context.switchToHttp().getRequest<AdminRequest>();
    const ticket = eventStreamQuery(request).ticket;
    if (typeof ticket === 'string' && bearerOf(request) === null) {
      // Shed before the ticket is used, so the console's retry (Nginx's, on another replica) still has it.
      if (this.drain.isDraining) throw new UnavailableError('server shutting down, reconnect');
      const { expiresAt } = await this.tickets.consume(ticket, 'admin', request.headers.origin);
      request.adminSessionExpiresAt = expiresAt * 1000;
      return true;
    }
    const token = adminSessionOf(request);
    if (!token) {
      throw new UnauthorizedError('log in first: POST /admin/api/login, then send Authorization: Bearer <token>', {
        realm: Realm.Herald,
      });
    }
    if (!this.sessions.verify(token)) {
      throw new UnauthorizedError('not an admin session, or it expired: log in again', {
        realm: Realm.Herald,
        invalidToken: true,
      });
    }
    request.adminSessionExpiresAt = this.sessions.expiryOf(token);
    return true;
  }
}

/** The admin session a request carries: the Bearer header, or `?token=` on the event stream only. */
function adminSessionOf(request: FastifyRequest): string | null {
  const query = eventStreamQuery(request).token;
  return bearerOf(request) ?? (typeof query === 'string' ? query : null);
}

/** The query of a request to the event stream, the one admin endpoint that reads credentials from it. */
function eventStreamQuery(request: FastifyRequest): { ticket?: unknown; token?: unknown } {
  return request.routeOptions.url?.endsWith('/events') ? (request.query as { ticket?: unknown; token?: unknown }) : {};
}
