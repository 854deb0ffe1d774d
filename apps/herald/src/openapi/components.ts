import {
  AcksRequestSchema,
  AcksResponseSchema,
  AdminBroadcastPreviewSchema,
  AdminInboxResponseSchema,
  InboxPageSchema,
  InboxStateRequestSchema,
  InboxStateResponseSchema,
  ReadAllRequestSchema,
  ReadAllResponseSchema,
  UnreadCountSchema,
  AdminWebhookAttemptsResponseSchema,
  AdminWebhooksResponseSchema,
  WebhookCreateRequestSchema,
  WebhookEndpointCreatedSchema,
  WebhookEndpointListSchema,
  WebhookEndpointSchema,
  WebhookEventSchema,
  WebhookSecretSchema,
  WebhookUpdateRequestSchema,
  AdminConnectionsResponseSchema,
  AdminLoginRequestSchema,
  AdminNotificationsResponseSchema,
  AdminSessionSchema,
  AdminStatsSchema,
  ApiErrorBodySchema,
  HealthLiveSchema,
  HealthReadySchema,
  NotificationViewSchema,
  PublishRequestSchema,
  PublishResponseSchema,
  StreamPongRequestSchema,
  TicketResponseSchema,
  TokenRequestSchema,
  TokenResponseSchema,
} from '@herald/protocol';
import { globalRegistry, type z } from 'zod';
import type { oas31 } from 'zod-openapi';
import { createComponents, createRegistry, type ZodOpenApiOverride } from 'zod-openapi/api';

/** The OpenAPI version of the document: zod-openapi renders the schemas for it (`nullable`, `oneOf`). */
export const OPENAPI_VERSION = '3.0.0';

/** Request bodies: rendered as the server reads them (defaults make a field optional). */
const REQUESTS = {
  PublishRequest: PublishRequestSchema,
  TokenRequest: TokenRequestSchema,
  StreamPongRequest: StreamPongRequestSchema,
  AcksRequest: AcksRequestSchema,
  AdminLoginRequest: AdminLoginRequestSchema,
  InboxStateRequest: InboxStateRequestSchema,
  ReadAllRequest: ReadAllRequestSchema,
  WebhookCreateRequest: WebhookCreateRequestSchema,
  WebhookUpdateRequest: WebhookUpdateRequestSchema,
};

/** Response bodies: rendered as the server writes them. */
const RESPONSES = {
  PublishResponse: PublishResponseSchema,
  NotificationView: NotificationViewSchema,
  TokenResponse: TokenResponseSchema,
  TicketResponse: TicketResponseSchema,
  AcksResponse: AcksResponseSchema,
  ApiErrorBody: ApiErrorBodySchema,
  HealthLive: HealthLiveSchema,
  HealthReady: HealthReadySchema,
  AdminSession: AdminSessionSchema,
  AdminConnectionsResponse: AdminConnectionsResponseSchema,
  AdminBroadcastPreview: AdminBroadcastPreviewSchema,
  AdminNotificationsResponse: AdminNotificationsResponseSchema,
  AdminStats: AdminStatsSchema,
  AdminInboxResponse: AdminInboxResponseSchema,
  InboxPage: InboxPageSchema,
  InboxStateResponse: InboxStateResponseSchema,
  ReadAllResponse: ReadAllResponseSchema,
  UnreadCount: UnreadCountSchema,
  WebhookEndpoint: WebhookEndpointSchema,
  WebhookEndpointCreated: WebhookEndpointCreatedSchema,
  WebhookEndpointList: WebhookEndpointListSchema,
  WebhookSecret: WebhookSecretSchema,
  WebhookEvent: WebhookEventSchema,
  AdminWebhooksResponse: AdminWebhooksResponseSchema,
  AdminWebhookAttemptsResponse: AdminWebhookAttemptsResponseSchema,
};

/** A component of the document, by the `id` its schema carries in `@herald/protocol`. */
export type SchemaId = keyof typeof REQUESTS | keyof typeof RESPONSES;

/** `$ref` to a component, for `@ApiBody({ schema })` and `@ApiResponse({ schema })`. */
export function schemaRef(id: SchemaId): { $ref: string } {
  return { $ref: `#/components/schemas/${id}` };
}

/**
 * A response object may grow a field without breaking clients: zod renders a plain `z.object` output with
 * `additionalProperties: false`, which the document leaves out (strict objects, the request bodies, keep it).
 */
const tidy: ZodOpenApiOverride = ({ jsonSchema, zodSchema, io }) => {
  const def = zodSchema._zod.def as { type: string; catchall?: z.core.$ZodType };
  if (io === 'output' && def.type === 'object' && def.catchall === undefined) delete jsonSchema.additionalProperties;
  // `.int()` is a safe integer to zod; its bounds say nothing to a reader.
  if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
  if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
};

/** The schema components of the document, from the zod schemas (zod-openapi). */
export function schemaComponents(): Record<string, oas31.SchemaObject> {
  const registry = createRegistry();
  const add = (schemas: Record<string, z.core.$ZodType>, io: 'input' | 'output') => {
    for (const [id, schema] of Object.entries(schemas)) {
      if (globalRegistry.get(schema)?.id !== id) throw new Error(`the schema listed as ${id} has another id`);
      registry.addSchema(schema, ['components', id], { io, source: { type: 'mediaType' } });
    }
  };
  add(REQUESTS, 'input');
  add(RESPONSES, 'output');
  const { schemas = {} } = createComponents(registry, { override: tidy }, OPENAPI_VERSION);
  return schemas as Record<string, oas31.SchemaObject>;
}
