/**
 * Herald's REST bodies and queries, one zod schema each: the publish API, the notification views, the
 * end-user REST of the Server-Sent Events fallback (the admin API: `admin.ts`). Each schema is the type (`z.input` /
 * `z.output`), the server's validation (with the reason texts of its 400s) and the OpenAPI component
 * (`.meta({ id })`). Part of `@herald/protocol` (re-exported by `index.ts`); `docs/protocol.md` and
 * `docs/openapi.json` are the prose contract.
 */
import { z } from 'zod';
import {
  ErrorCode,
  EVENT_PATTERN,
  MAX_ACKS_PER_REQUEST,
  MAX_PAYLOAD_DEPTH,
  TOPIC_PATTERN,
  USER_ID_PATTERN,
  UUID_PATTERN,
} from './constants';
import type { JsonValue } from './index';
import { aloneProblem, NO_BODY_REASON, type ProblemParams } from './problems';
import { isoTime, isPlainObject, objectOrEmpty, queryParam } from './schema-parts';

// ---------------------------------------------------------------------------
// Publish: POST /v1/notifications (and the console's broadcasts)
// ---------------------------------------------------------------------------

const USERS_REASON = 'must be a non-empty array of user ids';
const USER_ID_REASON = 'must be 1-128 characters of letters, digits and _ . @ : -';
const TOPIC_REASON = 'must be 1-128 characters of letters, digits and _ . : -';
const EVENT_REASON = 'required: 1-128 characters of letters, digits and _ . : -';

/**
 * A user list: its length is checked first (a list over the limit is refused whole), then its ids, and
 * only the first bad id is named (a long list of bad ids gets one line, not thousands).
 */
function userIdList(maxRecipients?: number): z.ZodType<string[], string[]> {
  let list = z.array(z.unknown(), { error: USERS_REASON }).min(1, { error: USERS_REASON, abort: true });
  if (maxRecipients !== undefined) {
    list = list.max(maxRecipients, { error: `must list at most ${maxRecipients} users`, abort: true });
  }
  return list
    .check((ctx) => {
      const bad = ctx.value.findIndex((id) => typeof id !== 'string' || !USER_ID_PATTERN.test(id));
      if (bad >= 0) ctx.issues.push({ code: 'custom', path: [bad], message: USER_ID_REASON, input: ctx.value[bad] });
    })
    .meta({
      description: '1 to HERALD_MAX_RECIPIENTS user ids',
      items: { type: 'string', pattern: USER_ID_PATTERN.source },
      example: ['alice', 'bob'],
    }) as unknown as z.ZodType<string[], string[]>;
}

export const UsersAudienceSchema = z.strictObject({ users: userIdList() }).meta({ id: 'UsersAudience' });
export const TopicAudienceSchema = z
  .strictObject({
    topic: z
      .string({ error: TOPIC_REASON })
      .regex(TOPIC_PATTERN, { error: TOPIC_REASON })
      .meta({ description: 'Everyone subscribed to this topic when it is published', example: 'orders' }),
  })
  .meta({ id: 'TopicAudience' });
export const EveryoneAudienceSchema = z
  .strictObject({
    all: z.literal(true, { error: 'must be true' }).meta({ description: 'Every user Herald has seen', example: true }),
  })
  .meta({ id: 'EveryoneAudience' });

/** Exactly one of the three audiences, chosen by the key it has. */
function audienceOf(users: z.ZodType<{ users: string[] }, { users: string[] }>) {
  return z.xor([users, TopicAudienceSchema, EveryoneAudienceSchema], {
    error: (issue) =>
      isPlainObject(issue.input)
        ? 'must have exactly one of "users", "topic", "all"'
        : 'required: { "users": [...] } or { "topic": "..." } or { "all": true }',
  });
}

export const AudienceSchema = audienceOf(UsersAudienceSchema).meta({
  description: 'Who receives it: a list of users, a topic, or everyone.',
});
export type Audience = z.output<typeof AudienceSchema>;

export const EventNameSchema = z
  .string({ error: EVENT_REASON })
  .regex(EVENT_PATTERN, { error: EVENT_REASON })
  .meta({ description: '1-128 characters of letters, digits and `_ . : -`', example: 'order.shipped' });

/** Any JSON value (the body was parsed from JSON): object, array, string, number, boolean or null. */
export const JsonValueSchema = z.custom<JsonValue>(() => true).meta({ description: 'Any JSON value' });

const PayloadSchema = JsonValueSchema.default(() => ({})).meta({
  description: 'Any JSON, at most HERALD_MAX_PAYLOAD_BYTES serialized; default `{}`',
  example: { order: 42 },
});

function ttlSecondsOf(max?: number) {
  const reason = max === undefined ? 'must be a whole number from 1' : `must be a whole number from 1 to ${max}`;
  const ttl = z.number({ error: reason }).int({ error: reason, abort: true }).min(1, { error: reason, abort: true });
  return max === undefined ? ttl : ttl.max(max, { error: reason, abort: true });
}

function bodyError(reason: string) {
  return (issue: { code?: string; input?: unknown }) =>
    issue.code === 'invalid_type' ? (issue.input === undefined ? NO_BODY_REASON : reason) : undefined;
}

function publishRequestOf<A extends z.ZodType, T extends z.ZodType>(to: A, ttlSeconds: T) {
  return z.strictObject(
    { to, event: EventNameSchema, payload: PayloadSchema, ttlSeconds },
    { error: bodyError('must be a JSON object') },
  );
}

/** `POST /v1/notifications` as documented: the rules that do not depend on the server's configuration. */
export const PublishRequestSchema = publishRequestOf(
  AudienceSchema,
  ttlSecondsOf().optional().meta({
    description: 'How long it may be delivered; default HERALD_DEFAULT_TTL_SECONDS, at most HERALD_MAX_TTL_SECONDS',
    example: 3600,
  }),
).meta({ id: 'PublishRequest' });
export type PublishRequest = z.input<typeof PublishRequestSchema>;

/** The server's configured limits of a publish. */
export interface PublishLimits {
  maxRecipients: number;
  maxPayloadBytes: number;
  maxTtlSeconds: number;
  defaultTtlSeconds: number;
}

/**
 * What PostgreSQL's jsonb cannot store, as JSON.stringify writes it: \u0000, and
 * lone surrogates (paired ones are written as the characters themselves).
 * An escaped backslash before the `u` does not count.
 */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** True when arrays and objects nest deeper than `max`; iterative, so hostile depth cannot overflow the stack. */
function depthExceeds(value: JsonValue, max: number): boolean {
  const stack: [JsonValue, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) stack.push([child, depth + 1]);
  }
  return false;
}

/** UTF-8 length of JSON text (JSON.stringify escapes lone surrogates, so every surrogate here is paired). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** The payload's depth, size and storability, in that order: each refusal is reported alone, with its own message. */
function payloadFits(maxPayloadBytes: number) {
  return (ctx: z.core.ParsePayload<{ payload: JsonValue }>): void => {
    const payload = ctx.value.payload;
    const refuse = (params: ProblemParams, reason: string) =>
      ctx.issues.push({ code: 'custom', path: ['payload'], message: reason, input: payload, params });
    if (depthExceeds(payload, MAX_PAYLOAD_DEPTH)) {
      refuse(
        aloneProblem(`payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels`),
        `must nest at most ${MAX_PAYLOAD_DEPTH} levels deep`,
      );
      return;
    }
    const serialized = JSON.stringify(payload);
    // A character is 1 to 3 bytes of UTF-8: count them only when the length alone does not show that it fits.
    const bytes = serialized.length * 3 <= maxPayloadBytes ? serialized.length : utf8Length(serialized);
    if (bytes > maxPayloadBytes) {
      refuse(
        aloneProblem(`payload is ${bytes} bytes; the limit is ${maxPayloadBytes}`, ErrorCode.PayloadTooLarge),
        `must be at most ${maxPayloadBytes} bytes`,
      );
      return;
    }
    if (UNSTORABLE_ESCAPE.test(serialized)) {
      refuse(
        aloneProblem('payload contains a NUL character or an unpaired surrogate'),
        'strings must not contain U+0000 or unpaired UTF-16 surrogates',
      );
    }
  };
}

/**
 * `POST /v1/notifications` with the server's limits: user ids de-duplicated and sorted (the same set in any
 * order is the same request, and concurrent publishes lock new users in the same order), TTL and payload
 * defaulted, and the payload's depth, size (413) and storability checked once every field is right.
 */
export function publishRequestSchema(limits: PublishLimits) {
  const users = z.strictObject({
    users: userIdList(limits.maxRecipients).transform((ids) => [...new Set(ids)].sort()),
  });
  return publishRequestOf(
    audienceOf(users),
    ttlSecondsOf(limits.maxTtlSeconds).default(limits.defaultTtlSeconds),
  ).check(payloadFits(limits.maxPayloadBytes));
}
/** A publish request that passed validation, with defaults applied and user ids de-duplicated and sorted. */
export type ValidPublishRequest = z.output<ReturnType<typeof publishRequestSchema>>;

export const PublishResponseSchema = z
  .object({
    id: z.string().meta({ format: 'uuid', example: '3f1c2a9e-5b7d-4c1e-9a53-2f0d8e6b1c47' }),
    seq: z.number().int().meta({ description: 'Position in the global publish order', example: 1042 }),
    recipients: z.number().int().meta({ description: 'Deliveries created (0 for a topic nobody follows)', example: 1 }),
  })
  .meta({ id: 'PublishResponse' });
export type PublishResponse = z.output<typeof PublishResponseSchema>;

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
