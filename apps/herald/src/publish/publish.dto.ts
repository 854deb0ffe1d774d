import { Audience, JsonValue, PublishRequest, TOPIC_PATTERN, USER_ID_PATTERN } from '@herald/protocol';
import { BadRequestError, PayloadTooLargeError } from '../common/errors';

export const EVENT_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** Deepest nesting of arrays and objects a payload may have. */
export const MAX_PAYLOAD_DEPTH = 32;
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

export interface PublishLimits {
  maxRecipients: number;
  maxPayloadBytes: number;
  maxTtlSeconds: number;
  defaultTtlSeconds: number;
}

/** A publish request that passed validation, with defaults applied and user ids de-duplicated. */
export interface ValidPublish {
  audience: Audience;
  event: string;
  payload: JsonValue;
  ttlSeconds: number;
}

type Problem = { field: string; reason: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates `POST /v1/notifications`: every problem is reported with its field. */
export function parsePublishRequest(body: unknown, limits: PublishLimits): ValidPublish {
  const problems: Problem[] = [];
  if (body === undefined) {
    throw new BadRequestError('no JSON body: send one with Content-Type: application/json', [
      { field: '(body)', reason: 'missing, or not sent as application/json' },
    ]);
  }
  if (!isObject(body))
    throw new BadRequestError('body must be a JSON object', [{ field: '(body)', reason: 'must be a JSON object' }]);
  const known = new Set<keyof PublishRequest>(['to', 'event', 'payload', 'ttlSeconds']);
  for (const key of Object.keys(body)) {
    if (!known.has(key as keyof PublishRequest)) problems.push({ field: key, reason: 'unknown field' });
  }

  let audience: Audience | null = null;
  const to = body.to;
  if (!isObject(to)) {
    problems.push({ field: 'to', reason: 'required: { "users": [...] } or { "topic": "..." } or { "all": true }' });
  } else {
    const kinds = ['users', 'topic', 'all'].filter((k) => k in to);
    const extra = Object.keys(to).filter((k) => !['users', 'topic', 'all'].includes(k));
    for (const key of extra) problems.push({ field: `to.${key}`, reason: 'unknown field' });
    if (kinds.length !== 1) {
      problems.push({ field: 'to', reason: 'must have exactly one of "users", "topic", "all"' });
    } else if (kinds[0] === 'users') {
      const users = to.users;
      if (!Array.isArray(users) || users.length === 0) {
        problems.push({ field: 'to.users', reason: 'must be a non-empty array of user ids' });
      } else if (users.length > limits.maxRecipients) {
        problems.push({ field: 'to.users', reason: `must list at most ${limits.maxRecipients} users` });
      } else {
        const bad = users.findIndex((u) => typeof u !== 'string' || !USER_ID_PATTERN.test(u));
        if (bad >= 0) {
          problems.push({
            field: `to.users[${bad}]`,
            reason: 'must be 1-128 characters of letters, digits and _ . @ : -',
          });
        } else {
          // Sorted: the same set in any order hashes alike, and concurrent publishes
          // lock the same new users in the same order.
          audience = { users: [...new Set(users as string[])].sort() };
        }
      }
    } else if (kinds[0] === 'topic') {
      if (typeof to.topic !== 'string' || !TOPIC_PATTERN.test(to.topic)) {
        problems.push({ field: 'to.topic', reason: 'must be 1-128 characters of letters, digits and _ . : -' });
      } else {
        audience = { topic: to.topic };
      }
    } else if (to.all !== true) {
      problems.push({ field: 'to.all', reason: 'must be true' });
    } else {
      audience = { all: true };
    }
  }

  const event = body.event;
  if (typeof event !== 'string' || !EVENT_PATTERN.test(event)) {
    problems.push({ field: 'event', reason: 'required: 1-128 characters of letters, digits and _ . : -' });
  }

  let ttlSeconds = limits.defaultTtlSeconds;
  if (body.ttlSeconds !== undefined) {
    const ttl = body.ttlSeconds;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > limits.maxTtlSeconds) {
      problems.push({ field: 'ttlSeconds', reason: `must be a whole number from 1 to ${limits.maxTtlSeconds}` });
    } else {
      ttlSeconds = ttl;
    }
  }

  if (problems.length > 0 || audience === null) {
    throw new BadRequestError(problems.map((p) => `${p.field}: ${p.reason}`).join('; '), problems);
  }

  const payload = (body.payload === undefined ? {} : body.payload) as JsonValue;
  if (depthExceeds(payload, MAX_PAYLOAD_DEPTH)) {
    throw new BadRequestError(`payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels`, [
      { field: 'payload', reason: `must nest at most ${MAX_PAYLOAD_DEPTH} levels deep` },
    ]);
  }
  const serialized = JSON.stringify(payload);
  const size = Buffer.byteLength(serialized, 'utf8');
  if (size > limits.maxPayloadBytes) {
    throw new PayloadTooLargeError(`payload is ${size} bytes; the limit is ${limits.maxPayloadBytes}`);
  }
  if (UNSTORABLE_ESCAPE.test(serialized)) {
    throw new BadRequestError('payload contains a NUL character or an unpaired surrogate', [
      { field: 'payload', reason: 'strings must not contain U+0000 or unpaired UTF-16 surrogates' },
    ]);
  }
  return { audience, event: event as string, payload, ttlSeconds };
}

/** `Idempotency-Key` header: absent, or 1-255 printable ASCII characters. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(header)) {
    throw new BadRequestError('Idempotency-Key must be 1-255 printable ASCII characters', [
      { field: 'Idempotency-Key', reason: 'must be 1-255 printable ASCII characters' },
    ]);
  }
  return header;
}

/** JSON with object keys sorted, so equal requests hash equally. */
export function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
