import { Injectable, PipeTransform } from '@nestjs/common';
import type { ValidPublishRequest } from '@herald/protocol';
import { PublishService } from './publish.service';

/** A publish body (`PublishRequestSchema` with this server's limits), for `@Body(PublishRequestPipe)`. */
@Injectable()
export class PublishRequestPipe implements PipeTransform<unknown, ValidPublishRequest> {
  constructor(private readonly publish: PublishService) {}

  transform(body: unknown): ValidPublishRequest {
    return this.publish.parseRequest(body);
  }
}
