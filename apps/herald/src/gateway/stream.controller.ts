import { Body, Controller, Get, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import {
  AcksRequestSchema,
  STREAM_PONG_MESSAGE,
  StreamPongRequestSchema,
  type AcksRequest,
  type AcksResponse,
} from '@herald/protocol';
import type { z } from 'zod';
import type { FastifyReply } from 'fastify';
import {
  ApiBearerAuth,
  ApiBody,
  ApiHeader,
  ApiOperation,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { UserRequest, UserTokenGuard } from '../auth/user-token.guard';
import { ZodPipe } from '../common/zod.pipe';
import { ApiErrors, ApiUserErrors, schemaRef } from '../openapi/decorators';
import { StreamService } from './stream.service';

/** The end-user REST side: the SSE fallback stream and its acks. Thin bindings onto StreamService. */
@Controller('v1')
@UseGuards(UserTokenGuard)
@ApiTags('end users')
@ApiBearerAuth('userToken')
@ApiUserErrors()
export class StreamController {
  constructor(private readonly streams: StreamService) {}

  @Get('stream')
  @ApiOperation({
    summary: 'Server-Sent Events fallback for /ws',
    description:
      'The same notifications as the WebSocket, as `text/event-stream`: a `welcome` event, then `notification` events ' +
      'with `id:` = seq, comment heartbeats every HERALD_HEARTBEAT_MS, and a `close` event ({code, reason}) before the ' +
      'server ends the stream. Resume with `Last-Event-ID`. Ack with POST /v1/acks. The token may also come as `?token=`.',
  })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description:
      'The seq of the last notification received: the replay sends what came after it (and anything never sent); ' +
      'earlier unacked ones are sent again on the redelivery schedule if their ack does not come.',
  })
  @ApiQuery({
    name: 'lastEventId',
    required: false,
    schema: { type: 'integer', minimum: 0 },
    description: 'Same as the header, for a first connect.',
  })
  @ApiProduces('text/event-stream')
  @ApiResponse({
    status: 200,
    description: 'The event stream.',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiErrors(400, 503)
  stream(@Req() request: UserRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.streams.open(request, reply);
  }

  @Post('stream/pong')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Answer the stream heartbeat',
    description:
      'Send after each heartbeat comment of GET /v1/stream, with the `connectionId` of its `welcome` event. A stream ' +
      'whose client has answered once must answer each heartbeat before the next one, or the server ends it (so a ' +
      'vanished client stops counting as online); a client that never answers is not held to it. 404: no replica ' +
      'holds a connection of this user any more: reconnect.',
  })
  @ApiBody({
    schema: schemaRef('StreamPongRequest'),
    examples: { pong: { value: { connectionId: '5d0e8c1a-7f3b-4b9e-8a61-3c2d9e4f5a6b' } } },
  })
  @ApiResponse({ status: 204, description: 'The stream is alive.' })
  @ApiErrors(400, 404, 503)
  pong(
    @Req() request: UserRequest,
    @Body(new ZodPipe(StreamPongRequestSchema, { message: STREAM_PONG_MESSAGE }))
    body: z.output<typeof StreamPongRequestSchema>,
  ): Promise<void> {
    return this.streams.pong(request.user!.userId, body.connectionId);
  }

  @Post('acks')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Ack notifications received over the stream',
    description:
      'One result per id, in order: `ok`, `duplicate` (already acked), `expired`, or `forbidden` (not a notification of ' +
      'this user, or no such id; the WebSocket answers the same `FORBIDDEN`). Safe to retry.',
  })
  @ApiBody({
    schema: schemaRef('AcksRequest'),
    examples: {
      two: { value: { ids: ['0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11', '5d0e8c1a-7f3b-4b9e-8a61-3c2d9e4f5a6b'] } },
    },
  })
  @ApiResponse({ status: 200, schema: schemaRef('AcksResponse') })
  @ApiErrors(400, 413, 503)
  acks(@Req() request: UserRequest, @Body(new ZodPipe(AcksRequestSchema)) body: AcksRequest): Promise<AcksResponse> {
    return this.streams.ack(request.user!.userId, body.ids);
  }
}
