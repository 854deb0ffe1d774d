import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { bearerOf, Realm } from '../common/bearer';
import { UnauthorizedError } from '../common/errors';
import { AdminSessionService } from './admin-session.service';

/**
 * Every admin endpoint but the login: `Authorization: Bearer <session>`, or
 * `?token=` on the event stream (EventSource cannot send headers). API keys
 * and user tokens are not admin sessions.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(private readonly sessions: AdminSessionService) {}

  canActivate(context: ExecutionContext): boolean {
    this.sessions.assertEnabled();
    const request = context.switchToHttp().getRequest<Request>();
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
    return true;
  }
}

/** The admin session a request carries: the Bearer header, or `?token=` on the event stream only. */
export function adminSessionOf(request: Request): string | null {
  const query = request.path.endsWith('/events') ? request.query.token : undefined;
  return bearerOf(request) ?? (typeof query === 'string' ? query : null);
}
