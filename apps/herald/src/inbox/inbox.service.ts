import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { InboxAction, InboxPage, StateFrame } from '@herald/protocol';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { NotFoundError, storedOr503 } from '../common/errors';
import { MetricsService } from '../metrics/metrics.service';
import { InboxListQuery, InboxRepository } from '../record/inbox.repository';
import { idBoundAt } from '../record/notification-id';
import { Bus } from '../routing/bus';
import { WebhookEvents } from '../webhooks/webhook-events';

/** What every inbox request and frame answers while HERALD_INBOX_RETENTION_DAYS is 0 (404 NOT_FOUND). */
export const INBOX_OFF_MESSAGE = 'the inbox is off on this server (HERALD_INBOX_RETENTION_DAYS=0)';

/** What a state change answers: the ids that are not the user's items, and the count after it. */
export interface InboxChange {
  forbidden: string[];
  unreadCount: number;
}

/**
 * The synced inbox (ADR 0026): a user's items for HERALD_INBOX_RETENTION_DAYS from publish, their read
 * state, and its sync. A change is stored, then sent as a `state` frame to the user's connections that asked
 * for the `inbox` feature, through the bus as deliveries are (the replicas holding the user). A lost frame
 * costs nothing durable: a device reads the list and the count again when it connects.
 */
@Injectable()
export class InboxService implements OnModuleInit {
  private readonly logger = new Logger(InboxService.name);
  private epoch = 0;

  constructor(
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly repository: InboxRepository,
    private readonly bus: Bus,
    private readonly metrics: MetricsService,
    private readonly webhooks: WebhookEvents,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.enabled) this.epoch = await this.repository.epoch();
  }

  /** HERALD_INBOX_RETENTION_DAYS. */
  get retentionDays(): number {
    return this.config.inboxRetentionMs / 86_400_000;
  }

  /** False when HERALD_INBOX_RETENTION_DAYS is 0. */
  get enabled(): boolean {
    return this.config.inboxRetentionMs > 0;
  }

  async list(userId: string, query: InboxListQuery): Promise<InboxPage> {
    this.check();
    const { items, more } = await this.stored(() => this.repository.list(userId, this.windowId(), this.epoch, query));
    return { items, nextCursor: more && items.length > 0 ? String(items[items.length - 1]!.seq) : null };
  }

  async unreadCount(userId: string): Promise<number> {
    this.check();
    return this.stored(() => this.repository.unreadCount(userId, this.windowId(), this.epoch));
  }

  /** `ids`: 1 to MAX_INBOX_IDS_PER_REQUEST lowered UUIDs. */
  async apply(userId: string, action: InboxAction, ids: string[]): Promise<InboxChange> {
    this.check();
    const windowId = this.windowId();
    const refused = new Set(await this.stored(() => this.repository.apply(userId, windowId, action, ids)));
    const unreadCount = await this.stored(() => this.repository.unreadCount(userId, windowId, this.epoch));
    // In the request's order, each once.
    const asked = [...new Set(ids)];
    const forbidden = asked.filter((id) => refused.has(id));
    const changed = asked.filter((id) => !refused.has(id));
    this.metrics.inboxChanges.inc({ action }, changed.length);
    if (action === 'read') for (const id of changed) this.webhooks.record('notification.read', id, userId);
    if (changed.length > 0) this.notify(userId, { type: 'state', action, ids: changed, unreadCount });
    return { forbidden, unreadCount };
  }

  /** "Mark all read", of `topic`'s items only when given. */
  async readAll(userId: string, topic: string | null): Promise<{ throughSeq: number; unreadCount: number }> {
    this.check();
    const windowId = this.windowId();
    const throughSeq = await this.stored(() => this.repository.readAll(userId, windowId, topic));
    const unreadCount = await this.stored(() => this.repository.unreadCount(userId, windowId, this.epoch));
    this.metrics.inboxChanges.inc({ action: 'readAll' });
    if (throughSeq > 0)
      this.notify(userId, {
        type: 'state',
        action: 'readAll',
        throughSeq,
        ...(topic !== null ? { topic } : {}),
        unreadCount,
      });
    return { throughSeq, unreadCount };
  }

  /** The lowest notification id of the window: ids are UUIDv7, so older items are not even read. */
  private windowId(): string {
    return idBoundAt(Date.now() - this.config.inboxRetentionMs);
  }

  private check(): void {
    if (!this.enabled) throw new NotFoundError(INBOX_OFF_MESSAGE);
  }

  /** A store that fails answers 503 (and UNAVAILABLE on a socket): every change is safe to send again. */
  private stored<T>(work: () => Promise<T>): Promise<T> {
    return storedOr503(this.logger, 'inbox store', 'the inbox store is unavailable; retry', work);
  }

  private notify(userId: string, frame: StateFrame): void {
    this.bus.publishToUsers([userId], { kind: 'state', frame }).catch((error: Error) =>
      this.logger.warn({
        message: 'state change not sent; devices read it when they connect',
        userId,
        error: error.message,
      }),
    );
  }
}
