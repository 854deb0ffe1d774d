import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ApiKeyService, Publisher } from './api-key.service';

export type PublisherRequest = FastifyRequest & { publisher?: Publisher };

/** `Authorization: Bearer <publisher API key>` on the publish API. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly keys: ApiKeyService) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<PublisherRequest>();
    request.publisher = this.keys.publisherOf(request.raw);
    return true;
  }
}
