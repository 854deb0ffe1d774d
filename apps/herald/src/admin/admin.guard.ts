import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
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
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const query = request.path.endsWith('/events') ? request.query.token : undefined;
    const token = match?.[1] ?? (typeof query === 'string' ? query : undefined);
    if (!token)
      throw new UnauthorizedError('log in first: POST /admin/api/login, then send Authorization: Bearer <token>');
    if (!this.sessions.verify(token)) throw new UnauthorizedError('not an admin session, or it expired: log in again');
    return true;
  }
}
