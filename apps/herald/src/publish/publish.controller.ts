import { requestIdOf } from '../common/request-id';
import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { NotificationView, PublishResponse, TokenResponse } from '@herald/protocol';
import type { Response } from 'express';
import { ApiKeyGuard, PublisherRequest } from '../auth/api-key.guard';
import { PublishService } from './publish.service';

function publisherOf(request: PublisherRequest): string {
  return request.publisher!.keyId;
}

/** The publish API: thin bindings onto PublishService. */
@Controller('v1')
@UseGuards(ApiKeyGuard)
export class PublishController {
  constructor(private readonly publish: PublishService) {}

  @Post('notifications')
  @HttpCode(202)
  async create(
    @Req() request: PublisherRequest,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<PublishResponse> {
    const outcome = await this.publish.publish(publisherOf(request), body, idempotencyKey, requestIdOf(request));
    if (outcome.replayed) response.setHeader('Idempotent-Replayed', 'true');
    return outcome.response;
  }

  @Get('notifications/:id')
  get(
    @Req() request: PublisherRequest,
    @Param('id') id: string,
    @Query('limit') limit: unknown,
    @Query('after') after: unknown,
  ): Promise<NotificationView> {
    return this.publish.get(publisherOf(request), id, limit, after);
  }

  @Post('tokens')
  @HttpCode(201)
  token(@Body() body: unknown): TokenResponse {
    return this.publish.mintToken(body);
  }
}
