import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import {
  DEFAULT_INBOX_PAGE,
  INBOX_ACTIONS,
  InboxQuerySchema,
  InboxStateRequestSchema,
  MAX_INBOX_PAGE,
  ReadAllRequestSchema,
  type InboxAction,
  type InboxPage,
  type InboxStateRequest,
  type InboxStateResponse,
  type ReadAllResponse,
  type UnreadCount,
} from '@herald/protocol';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { z } from 'zod';
import { UserRequest, UserTokenGuard } from '../auth/user-token.guard';
import { NotFoundError } from '../common/errors';
import { parseOrThrow, ZodPipe } from '../common/zod.pipe';
import { ApiErrors, ApiUserErrors, schemaRef } from '../openapi/decorators';
import { InboxService } from './inbox.service';

const EXAMPLE_IDS = ['0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11', '5d0e8c1a-7f3b-4b9e-8a61-3c2d9e4f5a6b'];

/** The synced inbox's end-user REST (ADR 0026), with the user token: thin bindings onto InboxService. */
@Controller('v1/me')
@UseGuards(UserTokenGuard)
@ApiTags('end users')
@ApiBearerAuth('userToken')
@ApiUserErrors()
export class InboxController {
  constructor(private readonly inbox: InboxService) {}

  @Get('notifications')
  @ApiOperation({
    summary: 'The user’s inbox, newest first',
    description:
      'What the user was sent in the last HERALD_INBOX_RETENTION_DAYS, whatever its delivery state, with its `seen`, ' +
      '`read` and `archived` state as every device of theirs sees it. Archived items are listed only with `archived=true`.',
  })
  @ApiQuery({
    name: 'limit',
    required: false,
    schema: { type: 'integer', minimum: 1, maximum: MAX_INBOX_PAGE, default: DEFAULT_INBOX_PAGE },
  })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  @ApiQuery({
    name: 'unread',
    required: false,
    schema: { type: 'boolean' },
    description: 'true: unread only; false: read only',
  })
  @ApiQuery({
    name: 'archived',
    required: false,
    schema: { type: 'boolean', default: false },
    description: 'true: archived only',
  })
  @ApiQuery({ name: 'event', required: false, description: 'Only items of this event' })
  @ApiResponse({ status: 200, schema: schemaRef('InboxPage') })
  @ApiErrors(400, 404, 503)
  list(
    @Req() request: UserRequest,
    @Query(new ZodPipe(InboxQuerySchema, { firstOnly: true })) query: z.output<typeof InboxQuerySchema>,
  ): Promise<InboxPage> {
    return this.inbox.list(request.user!.userId, query);
  }

  @Get('unread-count')
  @ApiOperation({ summary: 'How many items of the inbox are neither read nor archived' })
  @ApiResponse({ status: 200, schema: schemaRef('UnreadCount') })
  @ApiErrors(404, 503)
  async unreadCount(@Req() request: UserRequest): Promise<UnreadCount> {
    return { unreadCount: await this.inbox.unreadCount(request.user!.userId) };
  }

  @Post('read-all')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Mark everything in the inbox read (or a topic’s items)',
    description:
      'One floor per stream of the user, not a write per item: items up to `throughSeq` are read, unless marked ' +
      'unread afterwards. The user’s connections with the `inbox` feature get a `state` frame. The body may be empty.',
  })
  @ApiBody({ schema: schemaRef('ReadAllRequest'), required: false, examples: { all: { value: {} } } })
  @ApiResponse({ status: 200, schema: schemaRef('ReadAllResponse') })
  @ApiErrors(400, 404, 503)
  readAll(@Req() request: UserRequest, @Body() body: unknown): Promise<ReadAllResponse> {
    const { topic } = parseOrThrow(ReadAllRequestSchema, body ?? {});
    return this.inbox.readAll(request.user!.userId, topic ?? null);
  }

  @Post(':action')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Mark items seen, unseen, read, unread, archived or unarchived',
    description:
      'One result per id: `ok` (applied, or already so) or `forbidden` (not an item of this user’s inbox, or no such ' +
      'id); the others are applied all the same. `read` implies `seen`; `unseen` also makes an item unread. The user’s ' +
      'connections with the `inbox` feature get a `state` frame. Safe to retry.',
  })
  @ApiParam({ name: 'action', enum: [...INBOX_ACTIONS] })
  @ApiBody({ schema: schemaRef('InboxStateRequest'), examples: { two: { value: { ids: EXAMPLE_IDS } } } })
  @ApiResponse({ status: 200, schema: schemaRef('InboxStateResponse') })
  @ApiErrors(400, 404, 503)
  async change(
    @Req() request: UserRequest,
    @Param('action') action: string,
    @Body(new ZodPipe(InboxStateRequestSchema)) body: InboxStateRequest,
  ): Promise<InboxStateResponse> {
    if (!(INBOX_ACTIONS as readonly string[]).includes(action))
      throw new NotFoundError(
        `no inbox action "${action.slice(0, 32)}": use one of ${INBOX_ACTIONS.join(', ')}, or read-all`,
      );
    const { forbidden, unreadCount } = await this.inbox.apply(request.user!.userId, action as InboxAction, body.ids);
    const refused = new Set(forbidden);
    return {
      results: body.ids.map((id) => ({ id, status: refused.has(id) ? ('forbidden' as const) : ('ok' as const) })),
      unreadCount,
    };
  }
}
