import {
  Body,
  Controller,
  Get,
  Header,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import {
  NotificationQuerySchema,
  type NotificationView,
  type PublishResponse,
  type TokenResponse,
  type ValidPublishRequest,
} from '@herald/protocol';
import type { z } from 'zod';
import type { FastifyReply } from 'fastify';
import { ApiKeyGuard, PublisherRequest } from '../auth/api-key.guard';
import {
  ApiBearerAuth,
  ApiBody,
  ApiHeader,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors, ApiPublisherLimited, schemaRef } from '../openapi/decorators';
import { ZodPipe } from '../common/zod.pipe';
import { PublishService } from './publish.service';
import { PublishRequestPipe } from './publish-request.pipe';
import { TokenIssuer, TokenRequestPipe, type ValidTokenRequest } from '../auth/token-issuer';

/** Query parameters are read one at a time: the first bad one is named (`limit must be …`). */
export const NotificationQueryPipe = new ZodPipe(NotificationQuerySchema, { firstOnly: true });

function publisherOf(request: PublisherRequest): string {
  return request.publisher!.keyId;
}

/** The publish API: thin bindings onto PublishService. */
@Controller('v1')
@UseGuards(ApiKeyGuard)
@ApiBearerAuth('apiKey')
@ApiErrors(401)
export class PublishController {
  constructor(
    private readonly publish: PublishService,
    private readonly issuer: TokenIssuer,
  ) {}

  @Post('notifications')
  @HttpCode(202)
  @ApiTags('publish')
  @ApiOperation({
    summary: 'Publish a notification',
    description:
      'Stores the notification and one delivery per recipient in PostgreSQL, then answers 202; delivery follows over `/ws`.',
  })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Makes retries safe: the same key with the same body returns the first answer (with `Idempotent-Replayed: true`).',
  })
  @ApiBody({
    schema: schemaRef('PublishRequest'),
    examples: {
      users: { value: { to: { users: ['alice'] }, event: 'order.shipped', payload: { order: 42 } } },
      topic: { value: { to: { topic: 'orders' }, event: 'order.created', payload: { order: 43 }, ttlSeconds: 600 } },
      everyone: { value: { to: { all: true }, event: 'maintenance', payload: { at: '22:00' } } },
    },
  })
  @ApiResponse({ status: 202, description: 'Stored; delivery follows.', schema: schemaRef('PublishResponse') })
  @ApiErrors(400, 413, 422, 503)
  @ApiPublisherLimited()
  async create(
    @Req() request: PublisherRequest,
    @Body(PublishRequestPipe) body: ValidPublishRequest,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<PublishResponse> {
    const outcome = await this.publish.publish(publisherOf(request), body, idempotencyKey);
    if (outcome.replayed) reply.header('Idempotent-Replayed', 'true');
    return outcome.response;
  }

  @Get('notifications/:id')
  @ApiTags('publish')
  @ApiOperation({ summary: 'A notification with its delivery counts and per-recipient deliveries (paged)' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiQuery({
    name: 'limit',
    required: false,
    schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    description: 'Deliveries per page',
  })
  @ApiQuery({
    name: 'after',
    required: false,
    schema: { type: 'string' },
    description: '`deliveries.nextCursor` of the previous page',
  })
  @ApiResponse({ status: 200, schema: schemaRef('NotificationView') })
  @ApiErrors(400, 404, 503)
  get(
    @Req() request: PublisherRequest,
    @Param('id') id: string,
    @Query(NotificationQueryPipe) query: z.output<typeof NotificationQuerySchema>,
  ): Promise<NotificationView> {
    return this.publish.get(publisherOf(request), id, query);
  }

  @Post('tokens')
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  @ApiTags('tokens')
  @ApiOperation({
    summary: 'Mint a user token for the WebSocket',
    description: 'Answered with `Cache-Control: no-store`: the token is a credential.',
  })
  @ApiBody({ schema: schemaRef('TokenRequest'), examples: { alice: { value: { userId: 'alice', ttlSeconds: 3600 } } } })
  @ApiResponse({ status: 201, schema: schemaRef('TokenResponse') })
  @ApiErrors(400)
  token(@Body(TokenRequestPipe) request: ValidTokenRequest): TokenResponse {
    return this.issuer.issue(request);
  }
}
