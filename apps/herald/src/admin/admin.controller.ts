import {
  Body,
  Controller,
  Delete,
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
  ADMIN_LOGIN_MESSAGE,
  AdminConnectionsQuerySchema,
  AdminLoginRequestSchema,
  AdminNotificationsQuerySchema,
  InboxQuerySchema,
  AdminWebhookAttemptsQuerySchema,
  type AdminWebhookAttemptsResponse,
  type AdminWebhooksResponse,
  NotificationQuerySchema,
  USER_ID_PATTERN,
  type AdminBroadcastPreview,
  type AdminInboxResponse,
  type AdminConnectionsResponse,
  type AdminLoginRequest,
  type AdminNotificationsResponse,
  type AdminSession,
  type AdminStats,
  type NotificationView,
  type PublishResponse,
  type TicketResponse,
  type ValidPublishRequest,
} from '@herald/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import {
  ApiBearerAuth,
  ApiBody,
  ApiHeader,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { TicketService } from '../auth/ticket.service';
import { ApiAdminErrors, ApiErrors, ApiInboxQuery, ApiWrongPassword, schemaRef } from '../openapi/decorators';
import { ZodPipe } from '../common/zod.pipe';
import { PublishRequestPipe } from '../publish/publish-request.pipe';
import { NotificationQueryPipe } from '../publish/publish.controller';
import { AdminEventsService } from './admin-events.service';
import { AdminEnabledGuard, AdminGuard, AdminRequest } from './admin.guard';
import { AdminSessionService } from './admin-session.service';
import { AdminService } from './admin.service';
import { BadRequestError } from '../common/errors';
import { InboxService } from '../inbox/inbox.service';
import { WebhookEndpointsService } from '../webhooks/webhook-endpoints.service';

/** Query parameters are read one at a time: the first bad one is named (`limit must be …`). */
const firstProblem = { firstOnly: true };

/** The console's login. */
@Controller('admin/api')
@UseGuards(AdminEnabledGuard)
@ApiTags('admin')
export class AdminLoginController {
  constructor(private readonly sessions: AdminSessionService) {}

  @Post('login')
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Log in to the admin console',
    description:
      'Trades HERALD_ADMIN_PASSWORD for a session token (HERALD_ADMIN_SESSION_TTL_SECONDS). Wrong passwords are ' +
      'limited per client address across replicas (HERALD_ADMIN_LOGIN_ATTEMPTS per minute; then 429 with Retry-After). ' +
      '503 while the admin API is off (no password set). Answered with `Cache-Control: no-store`.',
  })
  @ApiBody({
    schema: schemaRef('AdminLoginRequest'),
    examples: { login: { value: { password: 'the admin password' } } },
  })
  @ApiResponse({ status: 201, schema: schemaRef('AdminSession') })
  @ApiErrors(400, 429, 503)
  @ApiWrongPassword()
  login(
    @Req() request: FastifyRequest,
    @Body(new ZodPipe(AdminLoginRequestSchema, { message: ADMIN_LOGIN_MESSAGE })) body: AdminLoginRequest,
  ): Promise<AdminSession> {
    return this.sessions.login(body.password, request.ip);
  }
}

/** The admin API: thin bindings onto AdminService and the live event stream. Documented in docs/admin-api.md. */
@Controller('admin/api')
@UseGuards(AdminGuard)
@ApiTags('admin')
@ApiBearerAuth('adminSession')
@ApiAdminErrors()
export class AdminController {
  constructor(
    private readonly admin: AdminService,
    private readonly events: AdminEventsService,
    private readonly tickets: TicketService,
    private readonly inbox: InboxService,
    private readonly webhooks: WebhookEndpointsService,
  ) {}

  @Post('tickets')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Mint a one-time ticket for the event stream',
    description:
      'Open `/admin/api/events?ticket=` with it instead of putting the session in the URL. Single use, valid 30 s, ' +
      'on any replica, bound to the `Origin` it was minted from; only the event stream takes it. `Cache-Control: no-store`.',
  })
  @ApiResponse({ status: 201, schema: schemaRef('TicketResponse') })
  @ApiErrors(429)
  async ticket(@Req() request: AdminRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<TicketResponse> {
    reply.header('Cache-Control', 'no-store');
    return this.tickets.mint(
      'admin',
      'console',
      Math.floor((request.adminSessionExpiresAt ?? 0) / 1000),
      request.headers.origin,
    );
  }

  @Get('connections')
  @ApiOperation({ summary: 'Live connections on every replica, with totals per replica' })
  @ApiQuery({ name: 'userId', required: false, description: 'Only this user’s connections' })
  @ApiResponse({ status: 200, schema: schemaRef('AdminConnectionsResponse') })
  @ApiErrors(400)
  connections(
    @Query(new ZodPipe(AdminConnectionsQuerySchema, firstProblem))
    query: z.output<typeof AdminConnectionsQuerySchema>,
  ): Promise<AdminConnectionsResponse> {
    return this.admin.connections(query);
  }

  @Delete('connections/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Close one connection (1000, "disconnected by an admin"), on whichever replica holds it' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 204, description: 'The holding replica was told to close it.' })
  @ApiErrors(404)
  disconnect(@Param('id') id: string): Promise<void> {
    return this.admin.disconnect(id);
  }

  @Post('broadcasts/preview')
  @HttpCode(200)
  @ApiOperation({ summary: 'How many users a broadcast would reach now (the body of POST /admin/api/broadcasts)' })
  @ApiBody({
    schema: schemaRef('PublishRequest'),
    examples: { everyone: { value: { to: { all: true }, event: 'maintenance' } } },
  })
  @ApiResponse({ status: 200, schema: schemaRef('AdminBroadcastPreview') })
  @ApiErrors(400)
  preview(@Body(PublishRequestPipe) body: ValidPublishRequest): Promise<AdminBroadcastPreview> {
    return this.admin.preview(body);
  }

  @Post('broadcasts')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Send a broadcast from the console',
    description:
      'The same body, audiences, limits and idempotency as POST /v1/notifications; publisher `admin-console`.',
  })
  @ApiHeader({ name: 'Idempotency-Key', required: false })
  @ApiBody({
    schema: schemaRef('PublishRequest'),
    examples: { topic: { value: { to: { topic: 'news' }, event: 'news.flash', payload: { title: 'Hello' } } } },
  })
  @ApiResponse({ status: 202, schema: schemaRef('PublishResponse') })
  @ApiErrors(400, 413, 422)
  async broadcast(
    @Body(PublishRequestPipe) body: ValidPublishRequest,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<PublishResponse> {
    const outcome = await this.admin.broadcast(body, idempotencyKey);
    if (outcome.replayed) reply.header('Idempotent-Replayed', 'true');
    return outcome.response;
  }

  @Get('notifications')
  @ApiOperation({ summary: 'Notification history, newest first, with delivery counts' })
  @ApiQuery({ name: 'event', required: false })
  @ApiQuery({ name: 'userId', required: false, description: 'Only notifications with a delivery to this user' })
  @ApiQuery({
    name: 'status',
    required: false,
    enum: ['pending', 'sent', 'acked', 'expired', 'failed'],
    description: 'Only notifications with a delivery in this state',
  })
  @ApiQuery({ name: 'from', required: false, schema: { type: 'string', format: 'date-time' } })
  @ApiQuery({ name: 'to', required: false, schema: { type: 'string', format: 'date-time' } })
  @ApiQuery({ name: 'before', required: false, description: 'nextCursor of the previous page' })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } })
  @ApiResponse({ status: 200, schema: schemaRef('AdminNotificationsResponse') })
  @ApiErrors(400)
  notifications(
    @Query(new ZodPipe(AdminNotificationsQuerySchema, firstProblem))
    query: z.output<typeof AdminNotificationsQuerySchema>,
  ): Promise<AdminNotificationsResponse> {
    return this.admin.notifications(query);
  }

  @Get('notifications/:id')
  @ApiOperation({ summary: 'One notification (any publisher’s) with its per-recipient deliveries (paged)' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } })
  @ApiQuery({ name: 'after', required: false, description: 'nextCursor of the previous page' })
  @ApiResponse({ status: 200, schema: schemaRef('NotificationView') })
  @ApiErrors(400, 404)
  notification(
    @Param('id') id: string,
    @Query(NotificationQueryPipe) query: z.output<typeof NotificationQuerySchema>,
  ): Promise<NotificationView> {
    return this.admin.notification(id, query);
  }

  @Get('webhooks')
  @ApiOperation({
    summary:
      "Every publisher's webhook endpoints: state, why disabled, pending messages, the last hour's attempts and failures",
  })
  @ApiResponse({ status: 200, schema: schemaRef('AdminWebhooksResponse') })
  @ApiErrors(503)
  async webhookEndpoints(): Promise<AdminWebhooksResponse> {
    return { items: await this.webhooks.adminList() };
  }

  @Get('webhooks/:id/attempts')
  @ApiOperation({ summary: "An endpoint's latest attempts: outcome, status, latency, error" })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } })
  @ApiResponse({ status: 200, schema: schemaRef('AdminWebhookAttemptsResponse') })
  @ApiErrors(400, 404, 503)
  webhookAttempts(
    @Param('id') id: string,
    @Query(new ZodPipe(AdminWebhookAttemptsQuerySchema, firstProblem))
    query: z.output<typeof AdminWebhookAttemptsQuerySchema>,
  ): Promise<AdminWebhookAttemptsResponse> {
    return this.webhooks.adminAttempts(id, query.limit);
  }

  @Get('users/:userId/inbox')
  @ApiOperation({
    summary: 'A user’s inbox as their devices see it: their items, what they read, their unread count',
    description:
      'The query of GET /v1/me/notifications. 404 only when the inbox is off (HERALD_INBOX_RETENTION_DAYS=0).',
  })
  @ApiParam({ name: 'userId', description: '1-128 characters of letters, digits and `_ . @ : -`' })
  @ApiInboxQuery()
  @ApiResponse({ status: 200, schema: schemaRef('AdminInboxResponse') })
  @ApiErrors(400, 404, 503)
  async userInbox(
    @Param('userId') userId: string,
    @Query(new ZodPipe(InboxQuerySchema, firstProblem)) query: z.output<typeof InboxQuerySchema>,
  ): Promise<AdminInboxResponse> {
    if (!USER_ID_PATTERN.test(userId))
      throw new BadRequestError('userId: must be a user id', [{ field: 'userId', reason: 'must be a user id' }]);
    const [page, unreadCount] = await Promise.all([this.inbox.list(userId, query), this.inbox.unreadCount(userId)]);
    return { userId, unreadCount, inboxRetentionDays: this.inbox.retentionDays, ...page };
  }

  @Get('stats')
  @ApiOperation({
    summary: 'Live counters for the overview: connections, notifications per minute, ack latency, resends, failures',
  })
  @ApiResponse({ status: 200, schema: schemaRef('AdminStats') })
  stats(): Promise<AdminStats> {
    return this.admin.stats();
  }

  @Get('events')
  @ApiOperation({
    summary: 'The live admin event stream (Server-Sent Events)',
    description:
      'Events from every replica: `connection.opened`, `connection.closed`, `notification.progress` (delivery counts, ' +
      'at most every 250 ms per replica), `user.acked`. EventSource cannot send headers: open it with `?ticket=` from ' +
      'POST /admin/api/tickets (`?token=` with the session itself still works, but puts it in URLs: discouraged). ' +
      'Open it before reading the snapshot (GET connections) so nothing falls in between.',
  })
  @ApiQuery({ name: 'ticket', required: false, description: 'A one-time ticket from POST /admin/api/tickets' })
  @ApiQuery({ name: 'token', required: false, description: 'The admin session (discouraged: a credential in the URL)' })
  @ApiProduces('text/event-stream')
  @ApiResponse({
    status: 200,
    description: 'The event stream.',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  stream(@Req() request: AdminRequest, @Res() reply: FastifyReply): void {
    this.events.open(request, reply);
  }
}
