import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { UpgradeAuthService } from './upgrade-auth.service';
import { UserPrincipal } from './user-token.service';

export type UserRequest = Request & { user?: UserPrincipal };

/**
 * End-user REST endpoints (`/v1/stream`, `/v1/acks`): the same rules as the
 * WebSocket upgrade — an allowed Origin, and a user token from
 * `Authorization: Bearer` or `?token=`. API keys are not user tokens.
 */
@Injectable()
export class UserTokenGuard implements CanActivate {
  constructor(private readonly auth: UpgradeAuthService) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<UserRequest>();
    const decision = this.auth.decide(request);
    if (!decision.ok) throw decision.error;
    request.user = decision.principal;
    return true;
  }
}
