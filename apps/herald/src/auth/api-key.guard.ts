import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { bearerOf } from '../common/bearer';
import { UnauthorizedError } from '../common/errors';
import { ApiKeyService, Publisher } from './api-key.service';

export type PublisherRequest = Request & { publisher?: Publisher };

/** `Authorization: Bearer <publisher API key>` on the publish API. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly keys: ApiKeyService) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<PublisherRequest>();
    const key = bearerOf(request);
    if (!key) throw new UnauthorizedError('missing "Authorization: Bearer <API key>" header');
    const publisher = this.keys.authenticate(key);
    if (!publisher) throw new UnauthorizedError('unknown API key');
    request.publisher = publisher;
    return true;
  }
}
