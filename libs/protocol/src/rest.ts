/**
 * Herald's REST bodies and queries, one zod schema each: the notification views, tokens and tickets, the
 * end-user REST of the Server-Sent Events fallback (the publish API: `publish.ts`; the admin API: `admin.ts`). Each schema is the type (`z.input` /
 * `z.output`), the server's validation (with the reason texts of its 400s) and the OpenAPI component
 * (`.meta({ id })`). Part of `@herald/protocol` (re-exported by `index.ts`); `docs/protocol.md` and
 * `docs/openapi.json` are the prose contract.
 */
import { z } from 'zod';
import { ErrorCode, MAX_ACKS_PER_REQUEST, USER_ID_PATTERN, UUID_PATTERN } from './constants';
import { isoTime, objectOrEmpty, queryParam, ttlSecondsOf } from './schema-parts';
import { AudienceSchema, JsonValueSchema } from './publish';

// ---------------------------------------------------------------------------
// Notification views: GET /v1/notifications/:id (and the console's detail)
// ---------------------------------------------------------------------------

export const DELIVERY_STATUSES = ['pending', 'sent', 'acked', 'expired', 'failed'] as const;
export const DeliveryStatusSchema = z.enum(DELIVERY_STATUSES);
export type DeliveryStatus = z.output<typeof DeliveryStatusSchema>;

export const DeliveryViewSchema = z
  .object({
    userId: z.string().meta({ example: 'alice' }),
    status: DeliveryStatusSchema.meta({ example: 'acked' }),
    attempts: z.number().int().meta({ description: 'Sends so far', example: 1 }),
    firstSentAt: isoTime().nullable(),
    lastSentAt: isoTime().nullable(),
    ackedAt: isoTime().nullable(),
    updatedAt: isoTime(),
  })
  .meta({ id: 'DeliveryView' });
export type DeliveryView = z.output<typeof DeliveryViewSchema>;

export const DeliveryCountsSchema = z
  .object(
    Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, z.number().int()])) as Record<DeliveryStatus, z.ZodNumber>,
  )
  .meta({ id: 'DeliveryCounts', example: { pending: 0, sent: 0, acked: 1, expired: 0, failed: 0 } });

export const NotificationViewSchema = z
  .object({
    id: z.string().meta({ format: 'uuid' }),
    seq: z.number().int().meta({ example: 1042 }),
    event: z.string().meta({ example: 'order.shipped' }),
    payload: JsonValueSchema.meta({ example: { order: 42 } }),
    audience: AudienceSchema,
    topic: z.string().nullable().meta({ example: null }),
    createdAt: isoTime(),
    expiresAt: isoTime(),
    recipients: z.number().int().meta({ example: 1 }),
    counts: DeliveryCountsSchema,
    deliveries: z.object({
      items: z.array(DeliveryViewSchema),
      nextCursor: z
        .string()
        .nullable()
        .meta({ description: 'Pass as `?after=` to get the next page; null on the last page' }),
    }),
  })
  .meta({ id: 'NotificationView' });
export type NotificationView = z.output<typeof NotificationViewSchema>;

/** `GET /v1/notifications/:id` (and the console's detail): a page of deliveries. */
export const NotificationQuerySchema = z.object({
  limit: queryParam(
    (v) => Number.isInteger(Number(v)) && Number(v) >= 1 && Number(v) <= 1000,
    'must be a whole number from 1 to 1000',
  )
    .transform(Number)
    .optional()
    .default(100),
  after: queryParam(
    (v) => USER_ID_PATTERN.test(v),
    'must be the nextCursor of a previous page',
    'after must be a user id from a previous page',
  ).optional(),
});
export type NotificationQuery = z.input<typeof NotificationQuerySchema>;

// ---------------------------------------------------------------------------
// Tokens and tickets
// ---------------------------------------------------------------------------

const TOKEN_USER_REASON = 'required: 1-128 characters of letters, digits and _ . @ : -';

function tokenRequestOf<T extends z.ZodType>(ttlSeconds: T) {
  return z.strictObject({
    userId: z
      .string({ error: TOKEN_USER_REASON })
      .regex(USER_ID_PATTERN, { error: TOKEN_USER_REASON })
      .meta({ description: '1-128 characters of letters, digits and `_ . @ : -`', example: 'alice' }),
    ttlSeconds,
  });
}

/** `POST /v1/tokens` as documented. */
export const TokenRequestSchema = tokenRequestOf(
  ttlSecondsOf().optional().meta({ description: 'Lifetime; at most HERALD_TOKEN_MAX_TTL_SECONDS', example: 3600 }),
).meta({ id: 'TokenRequest' });
export type TokenRequest = z.input<typeof TokenRequestSchema>;

/** `POST /v1/tokens` with the server's longest token life; a body that is not an object counts as `{}`. */
export function tokenRequestSchema(maxTtlSeconds: number) {
  return z.preprocess(
    objectOrEmpty,
    tokenRequestOf(ttlSecondsOf(maxTtlSeconds).default(Math.min(3600, maxTtlSeconds))),
  );
}

export const TokenResponseSchema = z
  .object({
    token: z.string().meta({ description: 'HS256 JWT for `/ws` (`?token=` or `Authorization: Bearer`)' }),
    expiresAt: isoTime(),
  })
  .meta({ id: 'TokenResponse' });
export type TokenResponse = z.output<typeof TokenResponseSchema>;

/**
 * A one-time connection ticket (`POST /v1/tickets`, `POST /admin/api/tickets`): sent as `?ticket=` instead of
 * a token in the URL; worth nothing once used, or after `expiresAt` (30 s).
 */
export const TicketResponseSchema = z
  .object({
    ticket: z.string().meta({
      description:
        "One-time ticket: `/ws?ticket=`, `/v1/stream?ticket=` (or, from the console's own mint, `/admin/api/events?ticket=`)",
    }),
    expiresAt: isoTime('Worth nothing after this (30 s), or once used.'),
  })
  .meta({ id: 'TicketResponse' });
export type TicketResponse = z.output<typeof TicketResponseSchema>;

// ---------------------------------------------------------------------------
// End-user REST: the Server-Sent Events fallback and its acks
// ---------------------------------------------------------------------------

/**
 * `GET /v1/stream` sends the server frames as SSE events named after their
 * `type` (`welcome`, `notification`), with `id:` = the notification's `seq`,
 * comment lines as heartbeats, and this `close` event before the server ends
 * the stream (the same codes as the WebSocket's close frames).
 */
export interface StreamCloseEvent {
  code: number;
  reason: string;
}

/** The message of a refused `POST /v1/stream/pong`. */
export const STREAM_PONG_MESSAGE = "connectionId: required, the connectionId of the stream's welcome event";

/**
 * `POST /v1/stream/pong`: the answer to the stream's heartbeat (a `: ping`
 * comment), with the `connectionId` of its `welcome`. A stream whose client
 * has answered once must answer every heartbeat before the next one, or it is
 * ended; a client that never answers (a plain EventSource) is not held to it.
 */
export const StreamPongRequestSchema = z
  .preprocess(
    objectOrEmpty,
    z.object({
      connectionId: z
        .string({ error: 'required: a UUID' })
        .regex(UUID_PATTERN, { error: 'required: a UUID' })
        .transform((id) => id.toLowerCase())
        .meta({ format: 'uuid', description: "The `connectionId` of the stream's `welcome` event." }),
    }),
  )
  .meta({ id: 'StreamPongRequest' });
export type StreamPongRequest = z.input<(typeof StreamPongRequestSchema)['out']>;

const ACK_IDS_REASON = `required: an array of 1-${MAX_ACKS_PER_REQUEST} notification ids`;
const ACK_ID_REASON = 'must be a notification id (a string of 1-64 characters)';

/** `POST /v1/acks`: the notification ids the user has (the list's length checked before its ids). */
export const AcksRequestSchema = z
  .strictObject(
    {
      ids: z
        .array(z.unknown(), { error: ACK_IDS_REASON })
        .min(1, { error: ACK_IDS_REASON, abort: true })
        .max(MAX_ACKS_PER_REQUEST, { error: ACK_IDS_REASON, abort: true })
        .pipe(
          z.array(
            z.string({ error: ACK_ID_REASON }).min(1, { error: ACK_ID_REASON }).max(64, { error: ACK_ID_REASON }),
          ),
        )
        .meta({
          description: 'Notification ids (the `id` of each notification event).',
          items: { type: 'string', minLength: 1, maxLength: 64 },
          example: ['0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11'],
        }),
    },
    { error: (issue) => (issue.code === 'invalid_type' ? 'must be an object' : undefined) },
  )
  .meta({ id: 'AcksRequest' });
export type AcksRequest = z.output<typeof AcksRequestSchema>;

export const ACK_STATUSES = ['ok', 'duplicate', 'expired'] as const;
export type AckStatus = (typeof ACK_STATUSES)[number];
/** `forbidden`: not a notification of this user (or no such id), the answer the WebSocket gives as `FORBIDDEN`. */
export const AckOutcomeSchema = z.enum([...ACK_STATUSES, 'forbidden']);
export type AckOutcome = z.output<typeof AckOutcomeSchema>;

export const AcksResponseSchema = z
  .object({ results: z.array(z.object({ id: z.string(), status: AckOutcomeSchema })) })
  .meta({ id: 'AcksResponse' });
export type AcksResponse = z.output<typeof AcksResponseSchema>;

// ---------------------------------------------------------------------------
// Errors and health
// ---------------------------------------------------------------------------

/** The one error body shape of every REST endpoint. */
export const ApiErrorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]).meta({ example: ErrorCode.BadRequest }),
      message: z.string().meta({ example: 'event: required: 1-128 characters of letters, digits and _ . : -' }),
      details: z
        .array(
          z.object({
            field: z.string().meta({ example: 'event' }),
            reason: z.string().meta({ example: 'required: 1-128 characters of letters, digits and _ . : -' }),
          }),
        )
        .optional()
        .meta({ description: 'Per-field reasons; only with BAD_REQUEST' }),
      requestId: z.string().meta({ description: 'X-Request-Id of the request', example: 'trace-123' }),
    }),
  })
  .meta({ id: 'ApiErrorBody' });
export type ApiErrorBody = z.output<typeof ApiErrorBodySchema>;

export const HealthLiveSchema = z.object({ status: z.literal('ok') }).meta({ id: 'HealthLive' });
const upDown = z.enum(['up', 'down']);
export const HealthReadySchema = z
  .object({
    /** `draining`: shutting down; it finishes what it holds but takes nothing new. */
    status: z.enum(['ok', 'unavailable', 'draining']).meta({ example: 'ok' }),
    replicaId: z.string().meta({ example: 'herald-1' }),
    checks: z.object({ postgres: upDown, redis: upDown }),
  })
  .meta({ id: 'HealthReady' });
export type HealthReady = z.output<typeof HealthReadySchema>;
