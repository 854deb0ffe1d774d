import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { WebhookEventType } from '@herald/protocol';
import { BadRequestError } from '../common/errors';
import { WebhookEndpointRepository } from '../record/webhook-endpoint.repository';
import { RecipientEvent, WebhookRepository } from '../record/webhook.repository';
import { WebhookInterest } from './webhook-interest';
import { WebhookTargets } from './webhook-targets';

/** How often what happened here is recorded (and who wants it read again). */
const FLUSH_EVERY_MS = 1000;
/** Most events kept here while PostgreSQL is away; past it the oldest are dropped. */
const MAX_BUFFERED = 200_000;
/** An expiry is reported this long after the TTL, once the last acks in flight have landed. */
const EXPIRY_GRACE_MS = 1000;

type Buffered = RecipientEvent & { type: WebhookEventType };

/**
 * Where the delivery path tells webhooks what happened (ADR 0027): an ack, a failure, a read, a publish.
 * While anyone wants events (WebhookInterest), recipient events are kept here and recorded once a second in
 * one statement per type, which keeps only those some endpoint or callback URL wants. With nobody wanting
 * any, an ack costs a boolean check, and a replica runs one small read a second.
 */
@Injectable()
export class WebhookEvents implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WebhookEvents.name);
  private buffer: Buffered[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly repository: WebhookRepository,
    private readonly interest: WebhookInterest,
    private readonly targets: WebhookTargets,
    private readonly endpoints: WebhookEndpointRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.interest.refresh();
    this.timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    // A flush under way took its events before the last ones came: flush until none are left.
    for (let round = 0; round < 3 && (this.buffer.length > 0 || this.flushing); round++) await this.flush();
  }

  /**
   * A recipient's first ack, a delivery given up, or a read: recorded with the next flush, when anyone wants
   * events at all (else a boolean is all an ack pays: keeping every ack of a catch-up for a second cost it a
   * fifth more CPU, in garbage collection).
   */
  record(type: WebhookEventType, notificationId: string, userId: string): void {
    if (!this.interest.any) return;
    this.buffer.push({ type, notificationId, userId, at: new Date() });
    // Over the cap (PostgreSQL away for long), the oldest tenth goes at once, not one per event.
    if (this.buffer.length > MAX_BUFFERED) {
      this.buffer.splice(0, MAX_BUFFERED / 10);
      this.logger.error({ message: 'webhook events dropped: PostgreSQL away too long', count: MAX_BUFFERED / 10 });
    }
  }

  /**
   * Before a publish with `callbackUrl` is stored: 400 when the URL is refused or the key has no default
   * secret to sign with; else the URL is kept for `notificationId` (written first, so no event misses it).
   */
  async beforePublish(
    publisherId: string,
    notificationId: string,
    callbackUrl: string,
    ttlSeconds: number,
  ): Promise<void> {
    await this.targets.check('callbackUrl', callbackUrl);
    if (!(await this.endpoints.hasDefaultSecret(publisherId))) {
      throw new BadRequestError(
        'callbackUrl needs a default signing secret: create it with POST /v1/webhooks/default-secret',
        [{ field: 'callbackUrl', reason: 'this API key has no default signing secret yet' }],
      );
    }
    // Kept a minute past the TTL: the notification's own expiry is stamped when it is stored, a moment later.
    await this.repository.addCallback(
      notificationId,
      publisherId,
      callbackUrl,
      new Date(Date.now() + ttlSeconds * 1000 + 60_000),
    );
  }

  /** A stored publish: its expiry is reported to whoever wants it. Never fails the publish (logged instead). */
  async published(
    notification: { id: string; event: string; expiresAt: Date },
    publisherId: string,
    callbackUrl: string | null,
  ): Promise<void> {
    const forEndpoints = this.interest.wants(publisherId, 'notification.expired');
    if (!forEndpoints && callbackUrl === null) return;
    try {
      await this.repository.scheduleExpiry(
        { id: notification.id, publisherId, event: notification.event },
        new Date(notification.expiresAt.getTime() + EXPIRY_GRACE_MS),
        forEndpoints,
        callbackUrl,
      );
    } catch (error) {
      this.logger.error({
        message: 'expiry webhook not scheduled',
        notificationId: notification.id,
        error: (error as Error).message,
      });
    }
  }

  /** Reads who wants events, then records what is kept here that someone wants. One at a time. */
  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    await this.interest.refresh();
    if (this.buffer.length === 0) return;
    if (!this.interest.any) {
      this.buffer = [];
      return;
    }
    const taken = this.buffer;
    this.buffer = [];
    const byType = new Map<WebhookEventType, RecipientEvent[]>();
    for (const { type, ...event } of taken) {
      const list = byType.get(type) ?? [];
      list.push(event);
      byType.set(type, list);
    }
    for (const [type, events] of byType) {
      try {
        await this.repository.recordEvents(type, events);
      } catch (error) {
        // Kept for the next flush (PostgreSQL away): an event is late, not lost.
        this.buffer = events.map((event): Buffered => ({ ...event, type })).concat(this.buffer);
        this.logger.warn({
          message: 'webhook events not recorded; trying again',
          type,
          count: events.length,
          error: (error as Error).message,
        });
      }
    }
  }
}
