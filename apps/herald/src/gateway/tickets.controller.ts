import { Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { TicketResponse } from '@herald/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { TicketService } from '../auth/ticket.service';
import { UpgradeAuthService } from '../auth/upgrade-auth.service';
import { ApiErrors, ApiUserErrors, schemaRef } from '../openapi/decorators';

/** `POST /v1/tickets`: a one-time ticket for `/ws?ticket=` or `/v1/stream?ticket=` (ADR 0006). */
@Controller('v1')
@ApiTags('end users')
@ApiBearerAuth('userToken')
@ApiUserErrors()
export class TicketsController {
  constructor(
    private readonly auth: UpgradeAuthService,
    private readonly tickets: TicketService,
  ) {}

  @Post('tickets')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Mint a one-time connection ticket',
    description:
      'For browsers, which cannot put a header on a WebSocket or an EventSource: open `/ws?ticket=` or ' +
      '`/v1/stream?ticket=` with it instead of `?token=`. Needs the user token in `Authorization` (never in the URL). ' +
      'Single use, valid 30 s, on any replica, bound to this user and to the `Origin` it was minted from. ' +
      'Answered with `Cache-Control: no-store`.',
  })
  @ApiResponse({ status: 201, schema: schemaRef('TicketResponse') })
  @ApiErrors(429, 503)
  async mint(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<TicketResponse> {
    const user = this.auth.bearerPrincipal(request.raw);
    reply.header('Cache-Control', 'no-store');
    return this.tickets.mint('user', user.userId, user.expiresAt, request.headers.origin);
  }
}
