import {
  AuthFrameSchema,
  InboxStateFrameSchema,
  ClientAckFrame,
  ClientAcksFrame,
  ClientFrame,
  COMMAND_ID_PATTERN,
  ErrorCode,
  MAX_ACKS_PER_REQUEST,
  PingFrameSchema,
  SubscribeFrameSchema,
  UnsubscribeFrameSchema,
  UUID_PATTERN,
} from '@herald/protocol';
import type { z } from 'zod';

export type ParseResult =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: typeof ErrorCode.BadRequest | typeof ErrorCode.UnknownType; message: string; id?: string };

const UUID = UUID_PATTERN;

/** The frames read with their schema; `ack` and `acks`, the hot ones, are read by hand below (frame-parser.spec checks both agree). */
const SCHEMAS = {
  ping: PingFrameSchema,
  subscribe: SubscribeFrameSchema,
  unsubscribe: UnsubscribeFrameSchema,
  auth: AuthFrameSchema,
  ...InboxStateFrameSchema,
} satisfies Record<string, z.ZodType<ClientFrame>>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Turns one text frame into a typed client command, or says exactly what is
 * wrong with it (the message of the first problem). Never throws; never drops a frame silently.
 */
export function parseClientFrame(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: ErrorCode.BadRequest, message: 'frame is not valid JSON' };
  }
  if (!isObject(value)) return { ok: false, code: ErrorCode.BadRequest, message: 'frame must be a JSON object' };

  const rawId = value.id;
  const validCommandId = typeof rawId === 'string' && COMMAND_ID_PATTERN.test(rawId) ? rawId : undefined;
  const fail = (
    message: string,
    code: typeof ErrorCode.BadRequest | typeof ErrorCode.UnknownType = ErrorCode.BadRequest,
  ): ParseResult =>
    validCommandId === undefined ? { ok: false, code, message } : { ok: false, code, message, id: validCommandId };

  if (typeof value.type !== 'string') return fail('frame must have a string "type"');
  if (rawId !== undefined && validCommandId === undefined) {
    return fail('"id" must be a string of 1-64 printable ASCII characters');
  }
  const type = value.type;
  switch (type) {
    case 'ack': {
      if (validCommandId === undefined) return fail('"ack" needs "id": the notification id');
      const badFlag = notBoolean(value, 'through') ?? notBoolean(value, 'quiet');
      if (badFlag) return fail(badFlag);
      // A non-UUID id gets the same answer as one that exists but is not this user's: nothing to learn by probing.
      const id = UUID.test(validCommandId) ? validCommandId.toLowerCase() : validCommandId;
      const frame: ClientAckFrame = { type: 'ack', id };
      if (value.through === true) frame.through = true;
      if (value.quiet === true) frame.quiet = true;
      return { ok: true, frame };
    }
    case 'acks': {
      if (value.through !== undefined) {
        return fail('"through" is not allowed in "acks": send {"type":"ack","id":…,"through":true} on its own');
      }
      const ids = value.ids;
      if (
        !Array.isArray(ids) ||
        ids.length === 0 ||
        ids.length > MAX_ACKS_PER_REQUEST ||
        !ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= 64)
      ) {
        return fail(
          `"acks" needs "ids": an array of 1-${MAX_ACKS_PER_REQUEST} notification ids (strings of 1-64 characters)`,
        );
      }
      const badFlag = notBoolean(value, 'quiet');
      if (badFlag) return fail(badFlag);
      // An id that is not a UUID is answered `forbidden`, like one that is not this user's.
      const frame: ClientAcksFrame = {
        type: 'acks',
        ids: (ids as string[]).map((id) => (UUID.test(id) ? id.toLowerCase() : id)),
      };
      if (value.quiet === true) frame.quiet = true;
      return { ok: true, frame };
    }
    case 'ping':
    case 'subscribe':
    case 'unsubscribe':
    case 'auth':
    case 'seen':
    case 'unseen':
    case 'read':
    case 'unread':
    case 'archive':
    case 'unarchive': {
      const parsed = SCHEMAS[type].safeParse(value);
      return parsed.success ? { ok: true, frame: parsed.data } : fail(parsed.error.issues[0]!.message);
    }
    default:
      return fail(`unknown frame type ${JSON.stringify(type.slice(0, 64))}`, ErrorCode.UnknownType);
  }
}

/** The error of an optional flag that is there and is not `true` or `false`; undefined when it is fine. */
function notBoolean(value: Record<string, unknown>, name: string): string | undefined {
  const flag = value[name];
  return flag === undefined || typeof flag === 'boolean' ? undefined : `"${name}" must be true or false`;
}

export function isNotificationId(id: string): boolean {
  return UUID.test(id);
}
