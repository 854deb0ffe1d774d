import { Body, Controller, Delete, Get, Header, HttpCode, Param, Patch, Post, Req, UseGuards } from '@nestjs/common';
import {
  WebhookCreateRequestSchema,
  WebhookUpdateRequestSchema,
  type WebhookEndpoint,
  type WebhookEndpointCreated,
  type WebhookEndpointList,
  type WebhookSecret,
} from '@herald/protocol';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { z } from 'zod';
import { ApiKeyGuard, PublisherRequest } from '../auth/api-key.guard';
import { ZodPipe } from '../common/zod.pipe';
import { ApiErrors, schemaRef } from '../openapi/decorators';
import { WebhookEndpointsService } from './webhook-endpoints.service';

function publisherOf(request: PublisherRequest): string {
  return request.publisher!.keyId;
}

/** A publisher's webhook endpoints (docs/webhooks.md): thin bindings onto WebhookEndpointsService. */
@Controller('v1/webhooks')
@UseGuards(ApiKeyGuard)
@ApiBearerAuth('apiKey')
@ApiTags('webhooks')
@ApiErrors(401)
export class WebhooksController {
  constructor(private readonly endpoints: WebhookEndpointsService) {}

  @Post()
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Register a webhook endpoint',
    description:
      'At most 10 per API key. Its signing secret is in this answer only. The URL must not resolve to a private, ' +
      'loopback, link-local or other refused address (HERALD_WEBHOOK_ALLOWED_CIDRS lifts ranges).',
  })
  @ApiBody({
    schema: schemaRef('WebhookCreateRequest'),
    examples: {
      acks: { value: { url: 'https://api.example.com/herald-events', events: ['notification.acked'] } },
    },
  })
  @ApiResponse({ status: 201, schema: schemaRef('WebhookEndpointCreated') })
  @ApiErrors(400, 503)
  create(
    @Req() request: PublisherRequest,
    @Body(new ZodPipe(WebhookCreateRequestSchema)) body: z.output<typeof WebhookCreateRequestSchema>,
  ): Promise<WebhookEndpointCreated> {
    return this.endpoints.create(publisherOf(request), body);
  }

  @Get()
  @ApiOperation({ summary: "This API key's webhook endpoints" })
  @ApiResponse({ status: 200, schema: schemaRef('WebhookEndpointList') })
  @ApiErrors(503)
  async list(@Req() request: PublisherRequest): Promise<WebhookEndpointList> {
    return { items: await this.endpoints.list(publisherOf(request)) };
  }

  @Post('default-secret')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: "Make (or make anew) the key's default signing secret",
    description:
      'It signs what goes to the `callbackUrl` of a publish; a publish with one is refused until it exists. ' +
      'After a new one is made, the previous one signs too for 24 hours.',
  })
  @ApiResponse({ status: 200, schema: schemaRef('WebhookSecret') })
  @ApiErrors(503)
  defaultSecret(@Req() request: PublisherRequest): Promise<WebhookSecret> {
    return this.endpoints.rotateDefault(publisherOf(request));
  }

  @Get(':id')
  @ApiOperation({ summary: 'One webhook endpoint, with why it is disabled if it is' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 200, schema: schemaRef('WebhookEndpoint') })
  @ApiErrors(404, 503)
  get(@Req() request: PublisherRequest, @Param('id') id: string): Promise<WebhookEndpoint> {
    return this.endpoints.get(publisherOf(request), id);
  }

  @Patch(':id')
  @ApiOperation({ summary: "Change an endpoint's URL, events or description" })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiBody({
    schema: schemaRef('WebhookUpdateRequest'),
    examples: { events: { value: { events: ['notification.acked', 'notification.expired'] } } },
  })
  @ApiResponse({ status: 200, schema: schemaRef('WebhookEndpoint') })
  @ApiErrors(400, 404, 503)
  update(
    @Req() request: PublisherRequest,
    @Param('id') id: string,
    @Body(new ZodPipe(WebhookUpdateRequestSchema)) body: z.output<typeof WebhookUpdateRequestSchema>,
  ): Promise<WebhookEndpoint> {
    return this.endpoints.update(publisherOf(request), id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete an endpoint with its pending messages and attempts' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiErrors(404, 503)
  async remove(@Req() request: PublisherRequest, @Param('id') id: string): Promise<void> {
    await this.endpoints.remove(publisherOf(request), id);
  }

  @Post(':id/disable')
  @HttpCode(200)
  @ApiOperation({ summary: 'Disable an endpoint: it is sent nothing, and its pending messages wait' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 200, schema: schemaRef('WebhookEndpoint') })
  @ApiErrors(404, 503)
  disable(@Req() request: PublisherRequest, @Param('id') id: string): Promise<WebhookEndpoint> {
    return this.endpoints.setEnabled(publisherOf(request), id, false);
  }

  @Post(':id/enable')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Enable an endpoint again',
    description:
      'Its run of failures starts afresh; what it kept while disabled is sent now (what is older than ' +
      'HERALD_WEBHOOK_RETRY_HOURS is given up).',
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 200, schema: schemaRef('WebhookEndpoint') })
  @ApiErrors(404, 503)
  enable(@Req() request: PublisherRequest, @Param('id') id: string): Promise<WebhookEndpoint> {
    return this.endpoints.setEnabled(publisherOf(request), id, true);
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Make a new signing secret for an endpoint',
    description: 'The previous one signs too (a second signature in `webhook-signature`) for 24 hours.',
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 200, schema: schemaRef('WebhookSecret') })
  @ApiErrors(404, 503)
  rotate(@Req() request: PublisherRequest, @Param('id') id: string): Promise<WebhookSecret> {
    return this.endpoints.rotate(publisherOf(request), id);
  }
}
