/**
 * The synced inbox (ADR 0026): a user's notifications with their read state, the same on every device. The
 * state frames (`read`, `seen`, … and the server's `state`) and the end-user REST under `/v1/me/`. Part of
 * `@herald/protocol` (re-exported by `index.ts`); `docs/protocol.md` is the prose contract.
 */
import { z } from 'zod';
import { COMMAND_ID_PATTERN, EVENT_PATTERN, TOPIC_PATTERN, UUID_PATTERN } from './constants';
import { isoTime, queryParam } from './schema-parts';
import { JsonValueSchema } from './publish';

/** Most notification ids one state frame, or one `POST /v1/me/<action>`, may carry. */
export const MAX_INBOX_IDS_PER_REQUEST = 100;
/** Largest page `GET /v1/me/notifications` returns, and the page it returns by default. */
export const MAX_INBOX_PAGE = 100;
export const DEFAULT_INBOX_PAGE = 20;

/**
 * What a user does to items of their inbox. `read` implies `seen`; `unseen` also makes an item unread;
 * `unread` keeps it seen. Each is idempotent.
 */
export const INBOX_ACTIONS = ['seen', 'unseen', 'read', 'unread', 'archive', 'unarchive'] as const;
export type InboxAction = (typeof INBOX_ACTIONS)[number];

function idsReason(where: string): string {
  return `${where} needs "ids": an array of 1-${MAX_INBOX_IDS_PER_REQUEST} notification ids`;
}

/** Notification ids: each a UUID (lowered); the list's length is checked before the form of its ids. */
function inboxIds(reason: string) {
  const idReason = 'each id must be a notification id (a UUID)';
  return z
    .array(z.string({ error: reason }), { error: reason })
    .min(1, { error: reason, abort: true })
    .max(MAX_INBOX_IDS_PER_REQUEST, { error: reason, abort: true })
    .pipe(
      z.array(
        z
          .string({ error: idReason })
          .regex(UUID_PATTERN, { error: idReason })
          .transform((id) => id.toLowerCase()),
      ),
    );
}

const COMMAND_ID_REASON = '"id" must be a string of 1-64 printable ASCII characters';

/**
 * `{"type":"read","ids":[…]}` and the other actions alike (`INBOX_ACTIONS`), on a connection that asked for
 * the `inbox` feature. Answered by `ack` (when it carries `id`) once stored, or by `error`: `FORBIDDEN`
 * naming the ids that are not this user's inbox items (the others are applied), `BAD_REQUEST` for a frame
 * out of shape.
 */
function stateFrame<T extends InboxAction>(type: T) {
  return z.object({
    type: z.literal(type),
    ids: inboxIds(idsReason(`"${type}"`)),
    id: z.string({ error: COMMAND_ID_REASON }).regex(COMMAND_ID_PATTERN, { error: COMMAND_ID_REASON }).optional(),
  });
}

/** The schema of each action's frame. */
export const InboxStateFrameSchema = {
  seen: stateFrame('seen'),
  unseen: stateFrame('unseen'),
  read: stateFrame('read'),
  unread: stateFrame('unread'),
  archive: stateFrame('archive'),
  unarchive: stateFrame('unarchive'),
} as const;
export const InboxStateFrameSchemas = Object.values(InboxStateFrameSchema) as [
  ReturnType<typeof stateFrame<'seen'>>,
  ...ReturnType<typeof stateFrame<InboxAction>>[],
];
export type InboxStateClientFrame = z.input<(typeof InboxStateFrameSchemas)[number]>;

/**
 * What changed in a user's inbox, sent to their connections that asked for the `inbox` feature (their own
 * included) within a second: `ids` changed by `action`, or everything up to `throughSeq` read (`readAll`, of
 * `topic` only when it names one). `unreadCount` is the user's count after the change.
 */
export interface StateFrame {
  type: 'state';
  action: InboxAction | 'readAll';
  ids?: string[];
  topic?: string;
  throughSeq?: number;
  unreadCount: number;
}

// ---------------------------------------------------------------------------
// REST: /v1/me/…
// ---------------------------------------------------------------------------

/** `POST /v1/me/read` (and `seen`, `unseen`, `unread`, `archive`, `unarchive`). */
export const InboxStateRequestSchema = z
  .strictObject(
    {
      ids: inboxIds(`required: an array of 1-${MAX_INBOX_IDS_PER_REQUEST} notification ids`).meta({
        description: 'Notification ids (UUIDs) of the user’s inbox.',
        items: { type: 'string', format: 'uuid' },
        example: ['0b7c6f8e-31a4-4c55-9f8e-2f1d1f0f9a11'],
      }),
    },
    { error: (issue) => (issue.code === 'invalid_type' ? 'must be an object' : undefined) },
  )
  .meta({ id: 'InboxStateRequest' });
export type InboxStateRequest = z.output<typeof InboxStateRequestSchema>;

/** `ok`: applied (or already so); `forbidden`: not an item of this user's inbox (or no such id). */
export const InboxStateResponseSchema = z
  .object({
    results: z.array(z.object({ id: z.string(), status: z.enum(['ok', 'forbidden']) })),
    unreadCount: z.number().int(),
  })
  .meta({ id: 'InboxStateResponse' });
export type InboxStateResponse = z.output<typeof InboxStateResponseSchema>;

const READ_ALL_TOPIC_REASON = 'must be a topic: 1-128 characters of letters, digits and _ . : -';

/** `POST /v1/me/read-all`: everything in the inbox now, or a topic's items only. */
export const ReadAllRequestSchema = z
  .strictObject(
    {
      topic: z
        .string({ error: READ_ALL_TOPIC_REASON })
        .regex(TOPIC_PATTERN, { error: READ_ALL_TOPIC_REASON })
        .optional()
        .meta({ description: 'Only the items published to this topic.', example: 'orders' }),
    },
    { error: (issue) => (issue.code === 'invalid_type' ? 'must be an object' : undefined) },
  )
  .meta({ id: 'ReadAllRequest' });
export type ReadAllRequest = z.output<typeof ReadAllRequestSchema>;

export const UnreadCountSchema = z
  .object({
    unreadCount: z.number().int().meta({ description: 'Items in the inbox neither read nor archived.' }),
  })
  .meta({ id: 'UnreadCount' });
export type UnreadCount = z.output<typeof UnreadCountSchema>;

export const ReadAllResponseSchema = z
  .object({
    unreadCount: z.number().int(),
    throughSeq: z.number().int().meta({ description: 'Items up to this seq are read (0: the inbox was empty).' }),
  })
  .meta({ id: 'ReadAllResponse' });
export type ReadAllResponse = z.output<typeof ReadAllResponseSchema>;

const booleanParam = (name: string) =>
  queryParam((v) => v === 'true' || v === 'false', 'must be true or false', `${name} must be true or false`)
    .transform((v) => v === 'true')
    .optional();

/** `GET /v1/me/notifications`: newest first, a page at a time. */
export const InboxQuerySchema = z.object({
  limit: queryParam(
    (v) => /^\d{1,3}$/.test(v) && Number(v) >= 1 && Number(v) <= MAX_INBOX_PAGE,
    `must be a whole number from 1 to ${MAX_INBOX_PAGE}`,
  )
    .transform(Number)
    .optional()
    .default(DEFAULT_INBOX_PAGE),
  cursor: queryParam(
    (v) => /^[1-9]\d{0,17}$/.test(v),
    'must be the nextCursor of a previous page',
    'cursor must be the nextCursor of a previous page',
  )
    .transform(Number)
    .optional(),
  unread: booleanParam('unread'),
  archived: booleanParam('archived'),
  event: queryParam(
    (v) => EVENT_PATTERN.test(v),
    'must be an event name: 1-128 characters of letters, digits and _ . : -',
  ).optional(),
});
export type InboxQuery = z.input<typeof InboxQuerySchema>;

export const InboxItemSchema = z
  .object({
    id: z.string().meta({ format: 'uuid' }),
    seq: z.number().int(),
    event: z.string(),
    payload: JsonValueSchema,
    topic: z.string().optional().meta({ description: 'Set when it was published to a topic.' }),
    timestamp: isoTime('When it was published.'),
    seen: z.boolean(),
    read: z.boolean(),
    archived: z.boolean(),
  })
  .meta({ id: 'InboxItem' });
export type InboxItem = z.output<typeof InboxItemSchema>;

export const InboxPageSchema = z
  .object({
    items: z.array(InboxItemSchema),
    nextCursor: z
      .string()
      .nullable()
      .meta({ description: 'Pass as `cursor` for the next (older) page; null on the last page.' }),
  })
  .meta({ id: 'InboxPage' });
export type InboxPage = z.output<typeof InboxPageSchema>;
