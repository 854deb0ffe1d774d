/**
 * `POST /v1/notifications` (and the console's broadcasts), one zod schema per part: the audience, the event
 * name, the payload, the TTL, and the request with the server's limits (`publishRequestSchema`). Part of
 * `@herald/protocol` (re-exported by `index.ts`); `docs/protocol.md` is the prose contract.
 */
import { z } from 'zod';
import { ErrorCode, EVENT_PATTERN, MAX_PAYLOAD_DEPTH, TOPIC_PATTERN, USER_ID_PATTERN } from './constants';
import type { JsonValue } from './index';
import { aloneProblem, NO_BODY_REASON, type ProblemParams } from './problems';
import { isPlainObject, ttlSecondsOf } from './schema-parts';
import { WebhookUrlSchema } from './webhooks';

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

function bodyError(reason: string) {
  return (issue: { code?: string; input?: unknown }) =>
    issue.code === 'invalid_type' ? (issue.input === undefined ? NO_BODY_REASON : reason) : undefined;
}

const CallbackUrlSchema = WebhookUrlSchema.optional().meta({
  description:
    "Where this notification's webhook events go (docs/webhooks.md), signed with the key's default secret (`POST /v1/webhooks/default-secret`)",
  example: 'https://api.example.com/herald-events',
});

function publishRequestOf<A extends z.ZodType, T extends z.ZodType>(to: A, ttlSeconds: T) {
  return z.strictObject(
    { to, event: EventNameSchema, payload: PayloadSchema, ttlSeconds, callbackUrl: CallbackUrlSchema },
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
