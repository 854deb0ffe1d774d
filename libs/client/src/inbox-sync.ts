import type {
  InboxAction,
  InboxStateClientFrame,
  NotificationFrame,
  ServerFrame,
  StateFrame,
  WelcomeFrame,
} from '@herald/protocol';
import { RecentIds } from './dedup.js';
import { Emitter } from './emitter.js';
import { messageOf } from './http.js';
import type { InboxRest } from './inbox-rest.js';
import { forbiddenError, idChunks, InboxError } from './inbox-state.js';
import type { ClientEvents, InboxEvents } from './types.js';

/** How long a state frame waits for its answer before it goes again by REST (every action is idempotent). */
export const INBOX_COMMAND_TIMEOUT_MS = 10_000;
/** A failed fetch of the count is tried again after 1 s, 2 s, 4 s, … at most this long, while connected. */
const COUNT_RETRY_MAX_MS = 30_000;

export interface InboxLink {
  /** Writes a frame on the open WebSocket; false when there is none. */
  send(frame: InboxStateClientFrame): boolean;
  /** Notification ids remembered for counting, across reconnects (the client's dedup window). */
  dedupWindow: number;
  error(event: ClientEvents['error']): void;
}

interface PendingCommand {
  action: InboxAction;
  ids: string[];
  timer: ReturnType<typeof setTimeout>;
  settle(outcome: Promise<string[]>): void;
}

/**
 * What `client.inbox` stands on, driven by the client's connection: the unread count (fetched at every
 * welcome, set by each `state` frame, raised by each new notification) and the actions, sent as frames on a
 * WebSocket that carries the `inbox` feature, by REST otherwise.
 */
export class InboxSync extends Emitter<InboxEvents> {
  private count: number | null = null;
  /** The newest item the last fetched count took in: a notification up to it is in the count already. */
  private horizon = 0;
  /** Notifications counted (or known to be in the count): a copy, or a redelivery, is not counted again. */
  private readonly counted: RecentIds;
  /** While the count is being fetched: the seqs of new notifications that arrived meanwhile. */
  private arrivedDuringFetch: number[] | null = null;
  /** Bumped for every fetch of the count: an older answer is dropped. */
  private fetches = 0;
  private fetchRetry: ReturnType<typeof setTimeout> | undefined;
  /** A `state` frame (or an action's answer) set the count while it was being fetched: it is newer. */
  private setDuringFetch = false;
  /** The current connection is a WebSocket whose welcome lists `inbox`: actions go as frames. */
  private framesAccepted = false;
  private readonly pending = new Map<string, PendingCommand>();
  private commandSeq = 0;

  constructor(
    private readonly link: InboxLink,
    private readonly rest: InboxRest,
  ) {
    super();
    this.counted = new RecentIds(link.dedupWindow);
  }

  /** Items neither read nor archived; null until the first count arrives. */
  get unreadCount(): number | null {
    return this.count;
  }

  /** A connection was welcomed: the count is fetched afresh; actions go as frames where they can. */
  opened(welcome: WelcomeFrame, duplex: boolean): void {
    const granted = welcome.features?.includes('inbox') ?? false;
    this.framesAccepted = duplex && granted;
    if (!granted) {
      this.link.error({
        message: 'the server did not grant the inbox feature (its welcome lists no "inbox"): no unread count',
        code: 'INBOX_OFF',
      });
      return;
    }
    void this.fetchCount();
  }

  /** The connection ended: actions waiting for its answer go again by REST. */
  connectionClosed(): void {
    this.framesAccepted = false;
    this.fetches++;
    clearTimeout(this.fetchRetry);
    this.arrivedDuringFetch = null;
    for (const [id, command] of this.pending) {
      this.pending.delete(id);
      clearTimeout(command.timer);
      command.settle(this.byRest(command.action, command.ids));
    }
  }

  /** A notification arrived: one not counted before raises the count at once. */
  arrived(frame: NotificationFrame): void {
    if (this.counted.has(frame.id)) return;
    this.counted.add(frame.id);
    this.arrivedDuringFetch?.push(frame.seq);
    if (this.count !== null && frame.seq > this.horizon) this.set(this.count + 1);
  }

  /**
   * A `state` frame: the count it carries, and a `change` event for the app's list. The items it names (or
   * reads through) are in its count: if one of them arrives here only now (read on another device first),
   * it does not raise the count again.
   */
  changed(frame: StateFrame): void {
    for (const id of frame.ids ?? []) this.counted.add(id);
    if (frame.action === 'readAll' && frame.topic === undefined && frame.throughSeq !== undefined) {
      this.horizon = Math.max(this.horizon, frame.throughSeq);
    }
    this.set(frame.unreadCount, true);
    this.emit('change', frame);
  }

  /** Settles the action an `ack` or `error` frame answers; false when it answers none of the inbox's. */
  answered(frame: Extract<ServerFrame, { type: 'ack' | 'error' }>): boolean {
    const command = frame.id === undefined ? undefined : this.pending.get(frame.id);
    if (!command || frame.id === undefined) return false;
    this.pending.delete(frame.id);
    clearTimeout(command.timer);
    if (frame.type === 'ack') command.settle(Promise.resolve([]));
    else if (frame.code === 'FORBIDDEN') command.settle(Promise.resolve(frame.ids ?? command.ids));
    else command.settle(Promise.reject(new InboxError(frame.code, `"${command.action}" refused: ${frame.message}`)));
    return true;
  }

  /**
   * Applies `action` to `ids`, 100 at a time, as frames or by REST. Resolves when every chunk is stored;
   * rejects with one `InboxError` naming the ids that are not this user's (the others applied), or with the
   * first other failure.
   */
  async apply(action: InboxAction, ids: readonly string[]): Promise<void> {
    const chunks = idChunks(ids);
    const outcomes = await Promise.allSettled(chunks.map((chunk) => this.applyChunk(action, chunk)));
    const forbidden: string[] = [];
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') throw outcome.reason;
      forbidden.push(...outcome.value);
    }
    if (forbidden.length > 0) throw forbiddenError(forbidden);
  }

  /** One chunk; resolves with the ids the server refused as not this user's. */
  private applyChunk(action: InboxAction, ids: string[]): Promise<string[]> {
    if (!this.framesAccepted) return this.byRest(action, ids);
    const id = `i${++this.commandSeq}`;
    if (!this.link.send({ type: action, ids, id })) return this.byRest(action, ids);
    return new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.byRest(action, ids).then(resolve, reject);
      }, INBOX_COMMAND_TIMEOUT_MS);
      this.pending.set(id, { action, ids, timer, settle: (outcome) => void outcome.then(resolve, reject) });
    });
  }

  private async byRest(action: InboxAction, ids: string[]): Promise<string[]> {
    const answer = await this.rest.apply(action, ids);
    this.set(answer.unreadCount, true);
    return answer.results.filter((r) => r.status === 'forbidden').map((r) => r.id);
  }

  /**
   * `GET /v1/me/unread-count`, and beside it the newest item, whose seq bounds what the count took in: a
   * notification up to it (a replay after the welcome) is in the count; one after it raises the count.
   */
  private async fetchCount(attempt = 1): Promise<void> {
    const fetch = ++this.fetches;
    this.arrivedDuringFetch = [];
    this.setDuringFetch = false;
    try {
      const [{ unreadCount }, newest] = await Promise.all([this.rest.unreadCount(), this.rest.list({ limit: 1 })]);
      if (fetch !== this.fetches) return;
      this.horizon = Math.max(this.horizon, newest.items[0]?.seq ?? 0);
      const newer = (this.arrivedDuringFetch ?? []).filter((seq) => seq > this.horizon).length;
      if (!this.setDuringFetch) this.set(unreadCount + newer);
    } catch (error) {
      if (fetch !== this.fetches) return;
      // A refusal (a wrong meUrl, the inbox off) stays; anything else (no network, 5xx, 429) may pass.
      const status = error instanceof InboxError ? error.status : undefined;
      const lasting = status !== undefined && status >= 400 && status < 500 && status !== 429;
      const delayMs = Math.min(COUNT_RETRY_MAX_MS, 1000 * 2 ** (attempt - 1));
      const retry = lasting ? '' : `; trying again in ${delayMs} ms`;
      this.link.error({ message: `unread count not fetched: ${messageOf(error)}${retry}`, cause: error });
      if (!lasting) {
        this.fetchRetry = setTimeout(() => {
          if (fetch === this.fetches) void this.fetchCount(attempt + 1);
        }, delayMs);
      }
    } finally {
      if (fetch === this.fetches) this.arrivedDuringFetch = null;
    }
  }

  /** A new count; `fromChange` when a change carried it, which a fetch still under way must not overwrite. */
  set(count: number, fromChange = false): void {
    if (fromChange && this.arrivedDuringFetch !== null) {
      this.setDuringFetch = true;
      this.arrivedDuringFetch = [];
    }
    if (count === this.count) return;
    this.count = count;
    this.emit('unreadCount', count);
  }
}
