import type { InboxAction, InboxItem, StateFrame } from '@herald/protocol';

/** The protocol's MAX_INBOX_IDS_PER_REQUEST, here so the SDK keeps no runtime dependency. */
export const MAX_INBOX_IDS = 100;
/** The protocol's UUID_PATTERN: notification ids. */
const NOTIFICATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Why an inbox call failed. `code` is the server's (`FORBIDDEN`, `BAD_REQUEST`, `UNAUTHORIZED`,
 * `RATE_LIMITED`, `UNAVAILABLE`, `NOT_FOUND`, …), `HTTP_<status>` for an answer that was not Herald's, or
 * `NETWORK` when no answer came. With `FORBIDDEN`, `ids` names the ids that are not items of this user's
 * inbox; the others were applied.
 */
export class InboxError extends Error {
  override readonly name = 'InboxError';
  readonly code: string;
  readonly ids: string[] | undefined;
  /** The HTTP status, when the answer came over REST. */
  readonly status: number | undefined;

  constructor(code: string, message: string, details: { ids?: string[]; status?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.ids = details.ids;
    this.status = details.status;
  }
}

/**
 * The ids of one call, lowered and without repeats, in chunks of at most MAX_INBOX_IDS (one frame or request
 * each). Throws an `InboxError` (`BAD_REQUEST`) naming what is not a notification id.
 */
export function idChunks(ids: readonly string[]): string[][] {
  const given: unknown = ids; // from JavaScript, anything
  if (!Array.isArray(given)) throw new InboxError('BAD_REQUEST', 'ids must be an array of notification ids');
  const bad = ids.filter((id) => typeof id !== 'string' || !NOTIFICATION_ID.test(id));
  if (bad.length > 0) {
    const named = bad.slice(0, 5).map((id) => JSON.stringify(id));
    throw new InboxError('BAD_REQUEST', `not notification ids (UUIDs): ${named.join(', ')}`, {
      ids: bad.filter((id): id is string => typeof id === 'string'),
    });
  }
  const unique = [...new Set(ids.map((id) => id.toLowerCase()))];
  const chunks: string[][] = [];
  for (let i = 0; i < unique.length; i += MAX_INBOX_IDS) chunks.push(unique.slice(i, i + MAX_INBOX_IDS));
  return chunks;
}

/** The refusal of ids that are not this user's: one error for the whole call. */
export function forbiddenError(ids: string[]): InboxError {
  const shown = ids.slice(0, 5).join(', ') + (ids.length > 5 ? ` and ${ids.length - 5} more` : '');
  return new InboxError('FORBIDDEN', `not in this user's inbox: ${shown} (the other ids were applied)`, { ids });
}

/** The read state of an item, as `applyInboxChange` updates it. */
export type InboxFlags = Pick<InboxItem, 'id' | 'seq' | 'topic' | 'seen' | 'read' | 'archived'>;

/** What each action does to the flags of an item it names: `read` implies `seen`, `unseen` also unreads. */
const EFFECTS: Record<InboxAction, Partial<Pick<InboxItem, 'seen' | 'read' | 'archived'>>> = {
  seen: { seen: true },
  unseen: { seen: false, read: false },
  read: { seen: true, read: true },
  unread: { read: false },
  archive: { archived: true },
  unarchive: { archived: false },
};

/**
 * An item as a `change` event (a `state` frame) leaves it: a new object when the change touches it, the same
 * one otherwise. `readAll` reads every item up to its `throughSeq` (of its topic only, when it names one).
 */
export function applyInboxChange<T extends InboxFlags>(item: T, change: StateFrame): T {
  let effect: Partial<InboxFlags>;
  if (change.action === 'readAll') {
    const covered =
      change.throughSeq !== undefined &&
      item.seq <= change.throughSeq &&
      (change.topic === undefined || item.topic === change.topic);
    effect = covered ? { seen: true, read: true } : {};
  } else {
    effect = change.ids?.includes(item.id) ? EFFECTS[change.action] : {};
  }
  const changed = Object.entries(effect).some(([key, value]) => item[key as keyof InboxFlags] !== value);
  return changed ? { ...item, ...effect } : item;
}
