import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ClsService } from 'nestjs-cls';
import type { HeraldClsStore } from '../common/logging';
import { ApiKeyService, Publisher } from './api-key.service';

export type PublisherRequest = FastifyRequest & { publisher?: Publisher };

/** `Authorization: Bearer <publisher API key>` on the publish API. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly cls: ClsService<HeraldClsStore>,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<PublisherRequest>();
    request.publisher = this.keys.publisherOf(request.raw);
    // The request's log lines name the publisher from here on (common/logging.ts).
    if (this.cls.isActive()) this.cls.set('publisher', request.publisher.keyId);
    return true;
  }
}
