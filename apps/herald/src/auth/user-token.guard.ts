import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { BadRequestError } from '../common/errors';
import { UpgradeAuthService } from './upgrade-auth.service';
import { UserPrincipal } from './user-token.service';

export type UserRequest = FastifyRequest<{ Querystring: Record<string, string | string[] | undefined> }> & {
  user?: UserPrincipal;
};

/**
 * End-user REST endpoints (`/v1/stream`, `/v1/acks`): the same rules as the
 * WebSocket upgrade — an allowed Origin, and a user token from
 * `Authorization: Bearer` or `?token=`, or on `/v1/stream` a one-time `?ticket=`.
 * API keys are not user tokens.
 */
@Injectable()
export class UserTokenGuard implements CanActivate {
  constructor(private readonly auth: UpgradeAuthService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<UserRequest>();
    const stream = request.routeOptions.url === '/v1/stream';
    if (!stream && request.query.ticket !== undefined) {
      throw new BadRequestError('a ticket opens /ws or /v1/stream only; send Authorization: Bearer <user token>', [
        { field: 'ticket', reason: 'not accepted here' },
      ]);
    }
    if (stream && this.auth.deferredTicket(request.raw) !== null) {
      // Consumed by the stream itself after its load checks: a stream shed for load leaves it unused.
      return true;
    }
    const decision = await this.auth.decide(request.raw);
    if (!decision.ok) throw decision.error;
    request.user = decision.principal;
    return true;
  }
}
