import type { InboxPage, ReadAllResponse } from '@herald/protocol';
import { InboxRest, type InboxRestOptions } from './inbox-rest.js';
import { InboxSync, type InboxLink } from './inbox-sync.js';
import type { InboxEvents, InboxListQuery } from './types.js';

/**
 * `client.inbox`: the user's synced inbox (docs/client.md, section 9). A page of it by REST, its unread
 * count kept up to date, and the actions (`markRead`, `archive`, …), which every device of the user sees
 * as a `change` event.
 */
export class InboxClient {
  /** Made by `HeraldClient` (the `inbox` option), not by apps. */
  constructor(
    private readonly sync: InboxSync,
    private readonly rest: InboxRest,
  ) {}

  /** Listens to `change` (a `state` frame) or `unreadCount`; returns the function that stops it. */
  on<K extends keyof InboxEvents>(event: K, listener: (value: InboxEvents[K]) => void): () => void {
    return this.sync.on(event, listener);
  }

  off<K extends keyof InboxEvents>(event: K, listener: (value: InboxEvents[K]) => void): void {
    this.sync.off(event, listener);
  }

  /** Items neither read nor archived; null until the first count arrives (after the first welcome). */
  get unreadCount(): number | null {
    return this.sync.unreadCount;
  }

  /**
   * Calls `listener` with the unread count now (when known) and on every change of it; returns the function
   * that stops it.
   */
  onUnreadCount(listener: (count: number) => void): () => void {
    const off = this.sync.on('unreadCount', listener);
    const now = this.sync.unreadCount;
    if (now !== null) {
      try {
        listener(now);
      } catch {
        // A listener's failure is the app's, as with every event.
      }
    }
    return off;
  }

  /** One page of the inbox, newest first; pass its `nextCursor` as `cursor` for the next (older) one. */
  list(query: InboxListQuery = {}): Promise<InboxPage> {
    return this.rest.list(query);
  }

  /** Marks items seen (shown in a list). */
  markSeen(ids: readonly string[]): Promise<void> {
    return this.sync.apply('seen', ids);
  }

  /** Marks items not seen (and so unread). */
  markUnseen(ids: readonly string[]): Promise<void> {
    return this.sync.apply('unseen', ids);
  }

  /** Marks items read (and seen). */
  markRead(ids: readonly string[]): Promise<void> {
    return this.sync.apply('read', ids);
  }

  /** Marks items unread (they stay seen). */
  markUnread(ids: readonly string[]): Promise<void> {
    return this.sync.apply('unread', ids);
  }

  /** Archives items: out of the default list and of the unread count. */
  archive(ids: readonly string[]): Promise<void> {
    return this.sync.apply('archive', ids);
  }

  unarchive(ids: readonly string[]): Promise<void> {
    return this.sync.apply('unarchive', ids);
  }

  /** Marks everything in the inbox now read (of `topic` only, when given), by REST. */
  async markAllRead(topic?: string): Promise<ReadAllResponse> {
    const answer = await this.rest.readAll(topic);
    this.sync.set(answer.unreadCount, true);
    return answer;
  }
}

/** A client's inbox: `client.inbox`, and `sync`, which the client's connection drives. */
export function createInbox(rest: InboxRestOptions, link: InboxLink): { inbox: InboxClient; sync: InboxSync } {
  const api = new InboxRest({ ...rest, meUrl: rest.meUrl.replace(/\/+$/, '') });
  const sync = new InboxSync(link, api);
  return { inbox: new InboxClient(sync, api), sync };
}
