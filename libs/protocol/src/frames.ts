/**
 * The client → server WebSocket frames: one zod schema per frame, and its type from the schema. The
 * server's `parseClientFrame` answers a frame that fails with the message of its first issue, so each
 * rule carries the text the `error` frame says (docs/protocol.md).
 */
import { z } from 'zod';
import { InboxStateFrameSchemas } from './inbox';
import { COMMAND_ID_PATTERN, MAX_ACKS_PER_REQUEST, MAX_TOKEN_LENGTH, TOPIC_PATTERN, UUID_PATTERN } from './constants';

const COMMAND_ID_REASON = '"id" must be a string of 1-64 printable ASCII characters';

/** A command id chosen by the client, echoed in the answer: 1–64 printable ASCII characters. */
export const CommandIdSchema = z
  .string({ error: COMMAND_ID_REASON })
  .regex(COMMAND_ID_PATTERN, { error: COMMAND_ID_REASON });

/** A notification id as sent in an ack: a UUID in any case is lowered; anything else is kept (answered as not this user's). */
const AckedIdSchema = z.string().transform((id) => (UUID_PATTERN.test(id) ? id.toLowerCase() : id));

function flag(name: string) {
  return z.boolean({ error: `"${name}" must be true or false` }).optional();
}

/** "I have this notification": `id` is the notification id. */
export const ClientAckFrameSchema = z
  .object({
    type: z.literal('ack'),
    id: z
      .string({
        error: (issue) => (issue.input === undefined ? '"ack" needs "id": the notification id' : COMMAND_ID_REASON),
      })
      .regex(COMMAND_ID_PATTERN, { error: COMMAND_ID_REASON })
      .pipe(AckedIdSchema),
    /**
     * With the `ackThrough` feature: also ack every notification sent earlier on this connection and not yet
     * acked (by the order the server sent them, never by `seq`). Answered by one `ack` frame with `settled`.
     */
    through: flag('through'),
    /**
     * With the `quietAcks` feature: answered only if it fails (an `error` frame: `FORBIDDEN` for an id that is
     * not one of this user's notifications, `UNAVAILABLE` or `RATE_LIMITED` to send it again), never with `ack`.
     */
    quiet: flag('quiet'),
  })
  .transform(({ through, quiet, ...frame }) => ({
    ...frame,
    ...(through === true ? { through } : {}),
    ...(quiet === true ? { quiet } : {}),
  }));

const ACK_IDS_REASON = `"acks" needs "ids": an array of 1-${MAX_ACKS_PER_REQUEST} notification ids (strings of 1-64 characters)`;

/**
 * Many acks in one frame: 1 to MAX_ACKS_PER_REQUEST notification ids, answered by one `acks` frame with a
 * result per id (`ok`, `duplicate`, `expired`, or `forbidden` for an id that is not one of this user's
 * notifications), as `POST /v1/acks` answers.
 */
export const ClientAcksFrameSchema = z
  .object({
    type: z.literal('acks'),
    through: z
      .undefined({
        error: '"through" is not allowed in "acks": send {"type":"ack","id":…,"through":true} on its own',
      })
      .optional(),
    ids: z
      .array(z.string({ error: ACK_IDS_REASON }).min(1, { error: ACK_IDS_REASON }).max(64, { error: ACK_IDS_REASON }), {
        error: ACK_IDS_REASON,
      })
      .min(1, { error: ACK_IDS_REASON })
      .max(MAX_ACKS_PER_REQUEST, { error: ACK_IDS_REASON })
      .pipe(z.array(AckedIdSchema)),
    /**
     * With the `quietAcks` feature: no `acks` answer; only the ids that failed are named, in an `error` frame
     * (`FORBIDDEN` with the ids that are not this user's notifications, `UNAVAILABLE` or `RATE_LIMITED` with
     * those to send again).
     */
    quiet: flag('quiet'),
  })
  .transform(({ through: _through, quiet, ...frame }) => ({ ...frame, ...(quiet === true ? { quiet } : {}) }));

export const PingFrameSchema = z.object({ type: z.literal('ping'), id: CommandIdSchema.optional() });

function channelFrame<T extends 'subscribe' | 'unsubscribe'>(type: T) {
  const reason = `"${type}" needs "channel": 1-128 characters of letters, digits and _ . : -`;
  return z.object({
    type: z.literal(type),
    channel: z.string({ error: reason }).regex(TOPIC_PATTERN, { error: reason }),
    id: CommandIdSchema.optional(),
  });
}

export const SubscribeFrameSchema = channelFrame('subscribe');
export const UnsubscribeFrameSchema = channelFrame('unsubscribe');

const TOKEN_REASON = `"auth" needs "token": a string of 1-${MAX_TOKEN_LENGTH} characters`;

/**
 * Replaces the connection's token before it expires, without reconnecting.
 * The new token must name the same user. Answered by `ack` (with `id`) or by
 * `error` `UNAUTHORIZED` / `FORBIDDEN`; the old token stays in force then.
 */
export const AuthFrameSchema = z.object({
  type: z.literal('auth'),
  token: z
    .string({ error: TOKEN_REASON })
    .min(1, { error: TOKEN_REASON })
    .max(MAX_TOKEN_LENGTH, { error: TOKEN_REASON }),
  id: CommandIdSchema.optional(),
});

/** Every client frame, by `type`. */
export const ClientFrameSchema = z.discriminatedUnion('type', [
  ClientAckFrameSchema,
  ClientAcksFrameSchema,
  PingFrameSchema,
  SubscribeFrameSchema,
  UnsubscribeFrameSchema,
  AuthFrameSchema,
  ...InboxStateFrameSchemas,
]);

/** The frames as a client sends them (`z.input`); the server works on the parsed form (`z.output`). */
export type ClientAckFrame = z.input<typeof ClientAckFrameSchema>;
export type ClientAcksFrame = z.input<typeof ClientAcksFrameSchema>;
export type PingFrame = z.input<typeof PingFrameSchema>;
export type SubscribeFrame = z.input<typeof SubscribeFrameSchema>;
export type UnsubscribeFrame = z.input<typeof UnsubscribeFrameSchema>;
export type AuthFrame = z.input<typeof AuthFrameSchema>;
export type ClientFrame = z.input<typeof ClientFrameSchema>;
export type ClientFrameType = ClientFrame['type'];
