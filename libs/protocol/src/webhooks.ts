/**
 * Delivery webhooks (ADR 0027): a publisher's endpoints, the events Herald posts to them, signed as Standard
 * Webhooks, and the console's view of them. Part of `@herald/protocol` (re-exported by `index.ts`);
 * `docs/webhooks.md` is the prose contract.
 */
import { z } from 'zod';
import { isoTime, queryParam } from './schema-parts';

/** Most endpoints one publisher key may register. */
export const MAX_WEBHOOK_ENDPOINTS = 10;
/** Most items one `notification.*` request carries (acks of a broadcast are batched up to this). */
export const MAX_WEBHOOK_ITEMS = 1000;
/** Longest endpoint or callback URL. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;
export const MAX_WEBHOOK_DESCRIPTION = 200;

/**
 * What an endpoint may be told. `notification.acked`: a recipient acked it (the first ack of each recipient),
 * `notification.failed`: Herald gave up resending to an online recipient, `notification.read`: a recipient
 * read it in the synced inbox, `notification.expired`: its TTL passed with recipients that had not acked.
 */
export const WEBHOOK_EVENTS = [
  'notification.acked',
  'notification.failed',
  'notification.read',
  'notification.expired',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

const URL_REASON = `must be an http:// or https:// URL of at most ${MAX_WEBHOOK_URL_LENGTH} characters, without user or password`;

/**
 * http(s), a host without user or password, an optional port, path and query, no fragment, no whitespace.
 * (The server parses it again, and checks where it points.)
 */
export const WEBHOOK_URL_PATTERN = /^https?:\/\/[^\s/?#@]+(?:[/?][^\s#]*)?$/i;

/** An endpoint or callback URL. */
export const WebhookUrlSchema = z
  .string({ error: URL_REASON })
  .max(MAX_WEBHOOK_URL_LENGTH, { error: URL_REASON })
  .regex(WEBHOOK_URL_PATTERN, { error: URL_REASON })
  .meta({
    format: 'uri',
    description: 'http:// or https://; its resolved address must not be private (HERALD_WEBHOOK_ALLOWED_CIDRS)',
    example: 'https://api.example.com/herald-events',
  });

const EVENTS_REASON = `must be a non-empty array of distinct events among ${WEBHOOK_EVENTS.join(', ')}`;
const EventsSchema = z
  .array(z.enum(WEBHOOK_EVENTS, { error: EVENTS_REASON }), { error: EVENTS_REASON })
  .min(1, { error: EVENTS_REASON })
  .refine((events) => new Set(events).size === events.length, EVENTS_REASON)
  .meta({ example: ['notification.acked', 'notification.failed'] });

const DESCRIPTION_REASON = `must be a string of at most ${MAX_WEBHOOK_DESCRIPTION} characters`;
const DescriptionSchema = z
  .string({ error: DESCRIPTION_REASON })
  .max(MAX_WEBHOOK_DESCRIPTION, { error: DESCRIPTION_REASON })
  .meta({ example: 'order service' });

/** `POST /v1/webhooks`. */
export const WebhookCreateRequestSchema = z
  .strictObject(
    { url: WebhookUrlSchema, events: EventsSchema, description: DescriptionSchema.default('') },
    { error: 'must be a JSON object with "url" and "events"' },
  )
  .meta({ id: 'WebhookCreateRequest' });
export type WebhookCreateRequest = z.input<typeof WebhookCreateRequestSchema>;

/** `PATCH /v1/webhooks/:id`: any of the fields, at least one. */
export const WebhookUpdateRequestSchema = z
  .strictObject(
    { url: WebhookUrlSchema.optional(), events: EventsSchema.optional(), description: DescriptionSchema.optional() },
    { error: 'must be a JSON object' },
  )
  .refine((body) => Object.keys(body).length > 0, 'name at least one of "url", "events", "description"')
  .meta({ id: 'WebhookUpdateRequest' });
export type WebhookUpdateRequest = z.input<typeof WebhookUpdateRequestSchema>;

/** An endpoint as its publisher sees it (never its secret, except once: `WebhookEndpointCreated`). */
export const WebhookEndpointSchema = z
  .object({
    id: z.string().meta({ format: 'uuid' }),
    url: z.string(),
    events: z.array(z.enum(WEBHOOK_EVENTS)),
    description: z.string(),
    enabled: z.boolean(),
    disabledReason: z.string().nullable().meta({
      description: 'Why it is disabled: by its publisher, or after failing for HERALD_WEBHOOK_DISABLE_AFTER_HOURS',
    }),
    disabledAt: isoTime().nullable(),
    failingSince: isoTime('Start of its current run of failed attempts (null after a success)').nullable(),
    createdAt: isoTime(),
    updatedAt: isoTime(),
  })
  .meta({ id: 'WebhookEndpoint' });
export type WebhookEndpoint = z.output<typeof WebhookEndpointSchema>;

/** A signing secret, shown once: `whsec_` and the base64 of the HMAC key (Standard Webhooks). */
const SecretSchema = z.string().meta({
  description: 'Shown only in this answer: store it. `whsec_` + base64 key (Standard Webhooks)',
  example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
});

export const WebhookEndpointCreatedSchema = WebhookEndpointSchema.extend({ secret: SecretSchema }).meta({
  id: 'WebhookEndpointCreated',
});
export type WebhookEndpointCreated = z.output<typeof WebhookEndpointCreatedSchema>;

export const WebhookEndpointListSchema = z
  .object({ items: z.array(WebhookEndpointSchema) })
  .meta({ id: 'WebhookEndpointList' });
export type WebhookEndpointList = z.output<typeof WebhookEndpointListSchema>;

/** `POST /v1/webhooks/:id/rotate-secret` and `POST /v1/webhooks/default-secret`. */
export const WebhookSecretSchema = z
  .object({
    secret: SecretSchema,
    previousSecretValidUntil: isoTime('Until then the previous secret signs too (a second signature)').nullable(),
  })
  .meta({ id: 'WebhookSecret' });
export type WebhookSecret = z.output<typeof WebhookSecretSchema>;

// ---------------------------------------------------------------------------
// What Herald posts: {type, timestamp, data: {items}}
// ---------------------------------------------------------------------------

/** One recipient's change (acked, failed, read). */
export const WebhookRecipientItemSchema = z.object({
  notificationId: z.string().meta({ format: 'uuid' }),
  event: z.string().meta({ description: "The notification's event name", example: 'order.shipped' }),
  userId: z.string(),
  at: isoTime('When it happened (acked, given up, read)'),
});
export type WebhookRecipientItem = z.output<typeof WebhookRecipientItemSchema>;

/** A notification whose TTL passed with recipients that never acked. */
export const WebhookExpiredItemSchema = z.object({
  notificationId: z.string().meta({ format: 'uuid' }),
  event: z.string(),
  expiresAt: isoTime(),
  recipients: z.number().int(),
  acked: z.number().int(),
  failed: z.number().int(),
  expired: z.number().int().meta({ description: 'Recipients that had not acked when it expired' }),
});
export type WebhookExpiredItem = z.output<typeof WebhookExpiredItemSchema>;

function eventBody<T extends WebhookEventType, I extends z.ZodType>(type: T, item: I) {
  return z.object({
    type: z.literal(type),
    timestamp: isoTime('When this message was made (the same on every retry)'),
    data: z.object({ items: z.array(item).meta({ description: `1 to ${MAX_WEBHOOK_ITEMS} items` }) }),
  });
}

export const WebhookEventSchema = z
  .discriminatedUnion('type', [
    eventBody('notification.acked', WebhookRecipientItemSchema),
    eventBody('notification.failed', WebhookRecipientItemSchema),
    eventBody('notification.read', WebhookRecipientItemSchema),
    eventBody('notification.expired', WebhookExpiredItemSchema),
  ])
  .meta({ id: 'WebhookEvent' });
export type WebhookEvent = z.output<typeof WebhookEventSchema>;

// ---------------------------------------------------------------------------
// The console: GET /admin/api/webhooks, GET /admin/api/webhooks/:id/attempts
// ---------------------------------------------------------------------------

/** How one attempt ended: `ok` (2xx), `http` (another status), or it never got an answer. */
export const WEBHOOK_ATTEMPT_OUTCOMES = ['ok', 'http', 'redirect', 'refused', 'network', 'timeout'] as const;
export type WebhookAttemptOutcome = (typeof WEBHOOK_ATTEMPT_OUTCOMES)[number];

export const WebhookAttemptSchema = z.object({
  id: z.number().int(),
  messageId: z.string().meta({ description: 'The `webhook-id` header: the same on every retry of a message' }),
  type: z.enum(WEBHOOK_EVENTS),
  attempt: z.number().int(),
  at: isoTime(),
  outcome: z.enum(WEBHOOK_ATTEMPT_OUTCOMES),
  statusCode: z.number().int().nullable(),
  latencyMs: z.number().int(),
  error: z.string().nullable(),
});
export type WebhookAttempt = z.output<typeof WebhookAttemptSchema>;

export const AdminWebhookSchema = WebhookEndpointSchema.extend({
  publisherId: z.string(),
  pendingMessages: z.number().int().meta({ description: 'Messages still to be delivered (retries included)' }),
  lastAttempt: WebhookAttemptSchema.nullable(),
  attemptsLastHour: z.number().int(),
  failuresLastHour: z.number().int(),
});
export type AdminWebhook = z.output<typeof AdminWebhookSchema>;

export const AdminWebhooksResponseSchema = z
  .object({ items: z.array(AdminWebhookSchema) })
  .meta({ id: 'AdminWebhooksResponse' });
export type AdminWebhooksResponse = z.output<typeof AdminWebhooksResponseSchema>;

const LIMIT_REASON = 'must be a whole number from 1 to 200';
/** `GET /admin/api/webhooks/:id/attempts?limit=`: the latest attempts first, 50 unless asked. */
export const AdminWebhookAttemptsQuerySchema = z.object({
  limit: queryParam((v) => /^\d{1,3}$/.test(v) && Number(v) >= 1 && Number(v) <= 200, LIMIT_REASON)
    .transform(Number)
    .optional()
    .transform((v) => v ?? 50),
});

export const AdminWebhookAttemptsResponseSchema = z
  .object({ endpoint: AdminWebhookSchema, items: z.array(WebhookAttemptSchema) })
  .meta({ id: 'AdminWebhookAttemptsResponse' });
export type AdminWebhookAttemptsResponse = z.output<typeof AdminWebhookAttemptsResponseSchema>;
