import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  NotificationQuerySchema,
  NotificationView,
  publishRequestSchema,
  PublishResponse,
  ValidPublishRequest,
} from '@herald/protocol';
import type { z } from 'zod';
import { createHash } from 'node:crypto';
import {
  BadRequestError,
  HeraldError,
  IdempotencyConflictError,
  NotFoundError,
  RateLimitedError,
  UnavailableError,
} from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { backstopAt } from '../redelivery/backoff';
import { newNotificationId } from '../record/notification-id';
import { NotificationRepository } from '../record/notification.repository';
import type { CreatedNotification, NewNotification } from '../record/notification.types';
import { retryOnDeadlock } from '../record/sql';
import { Batcher } from '../common/batcher';
import { parseOrThrow } from '../common/zod.pipe';
import { canonicalJson, parseIdempotencyKey } from './publish.dto';
import { PublisherLimiter } from './publisher-limiter';
import { NotificationRouter } from '../routing/notification-router';
import { WebhookEvents } from '../webhooks/webhook-events';

/**
 * Concurrent publishes to user lists are stored together: one statement and one commit per batch (group
 * commit). Under load a batch gathers for 2 ms from its first publish, and for as long as the batch
 * before it is being written; a lone publish under light load waits for nothing (see Batcher). Why these
 * settings: docs/performance.md, section 5 ("Group commit for publishes").
 */
const PUBLISH_WINDOW_MS = 2;
const PUBLISH_BATCH_MAX = 200;
const PUBLISH_BATCHES_IN_FLIGHT = 1;
/**
 * Topic and everyone publishes are grouped too, but only under heavy load: each is its own statement (its
 * audience is read when it is stored) and a group shares one transaction and one commit, so the fan-outs of
 * a group are written one after the other. Up to AUDIENCE_IN_FLIGHT of them run at once, each alone; only
 * what comes while they all run is grouped.
 */
const AUDIENCE_BATCH_MAX = 8;
const AUDIENCE_IN_FLIGHT = 8;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A group of audience publishes of which the limiter refused some: rolled back. */
class AudienceRefused extends Error {}

export interface PublishOutcome {
  response: PublishResponse;
  /** True when an earlier publish with the same idempotency key answered. */
  replayed: boolean;
}

/** The publish API's rules: validate, store durably, then route. */
@Injectable()
export class PublishService {
  private readonly logger = new Logger(PublishService.name);
  private readonly toUsers: Batcher<NewNotification, CreatedNotification>;
  private readonly toAudiences: Batcher<NewNotification, CreatedNotification | RateLimitedError>;
  /**
   * Each audience publish's charge, once made: a write tried again (a deadlock, or each publish alone after
   * its group failed) reuses it instead of charging the publisher twice.
   */
  private readonly charged = new WeakMap<NewNotification, RateLimitedError | null>();
  /** `POST /v1/notifications` (and the console's broadcasts) with this server's limits. */
  private readonly requestSchema: ReturnType<typeof publishRequestSchema>;

  constructor(
    private readonly notifications: NotificationRepository,
    private readonly router: NotificationRouter,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
    private readonly limiter: PublisherLimiter,
    private readonly webhooks: WebhookEvents,
  ) {
    this.requestSchema = publishRequestSchema(config);
    this.toUsers = new Batcher(
      (inputs) => retryOnDeadlock(() => this.notifications.createForUsers(inputs, this.deliveryDueAt())),
      {
        windowMs: PUBLISH_WINDOW_MS,
        maxBatch: PUBLISH_BATCH_MAX,
        maxInFlight: PUBLISH_BATCHES_IN_FLIGHT,
        // A batch refused whole (one item's content, say): each goes alone, so only that one fails.
        alone: (input) => this.notifications.create(input, this.deliveryDueAt()),
      },
    );
    this.toAudiences = new Batcher((inputs) => retryOnDeadlock(() => this.storeAudiences(inputs)), {
      windowMs: PUBLISH_WINDOW_MS,
      maxBatch: AUDIENCE_BATCH_MAX,
      maxInFlight: AUDIENCE_IN_FLIGHT,
      alone: async (input) => (await this.storeAudiences([input]))[0]!,
    });
  }

  /**
   * Topic and everyone publishes, in one transaction whose resolved recipients are charged to their
   * publishers before it commits. When the limiter refuses any, all are rolled back, and the others are
   * stored again, already charged.
   */
  private async storeAudiences(inputs: NewNotification[]): Promise<(CreatedNotification | RateLimitedError)[]> {
    let refusals: (RateLimitedError | null)[] = [];
    try {
      return await this.notifications.createMany(inputs, this.deliveryDueAt(), async (recipients) => {
        const due = inputs.flatMap((input, i) =>
          this.charged.has(input) ? [] : [{ input, keyId: input.publisherId, recipients: recipients[i] ?? 0 }],
        );
        const answers = await this.limiter.charge(due);
        due.forEach(({ input }, k) => this.charged.set(input, answers[k]!));
        refusals = inputs.map((input) => this.charged.get(input) ?? null);
        if (refusals.some((refusal) => refusal !== null)) throw new AudienceRefused();
      });
    } catch (error) {
      if (!(error instanceof AudienceRefused)) throw error;
    }
    const admitted = inputs.filter((_, i) => refusals[i] === null);
    const stored = admitted.length > 0 ? await this.notifications.createMany(admitted, this.deliveryDueAt()) : [];
    let next = 0;
    return inputs.map((_, i) => refusals[i] ?? stored[next++]!);
  }

  /** If no replica has taken a delivery by then, the sweep routes it. */
  private deliveryDueAt(): Date {
    return backstopAt(this.config.ackTimeoutMs, this.config);
  }

  /** A publish body checked against the schema and this server's limits (for PublishRequestPipe). */
  parseRequest(body: unknown): ValidPublishRequest {
    return parseOrThrow(this.requestSchema, body);
  }

  async publish(
    publisherId: string,
    request: ValidPublishRequest,
    idempotencyHeader: string | string[] | undefined,
  ): Promise<PublishOutcome> {
    const input = {
      audience: request.to,
      event: request.event,
      payload: request.payload,
      ttlSeconds: request.ttlSeconds,
    };
    const idempotencyKey = parseIdempotencyKey(idempotencyHeader);
    const callbackUrl = request.callbackUrl ?? null;
    // A user list is its own resolved audience: charged before it is stored (a topic's is charged inside).
    if ('users' in input.audience) {
      const admitting = this.limiter.admit(publisherId, input.audience.users.length);
      if (admitting) await admitting;
    }
    // Only a publish with an idempotency key is ever compared with another: without one, nothing is hashed.
    const requestHash =
      idempotencyKey === null
        ? ''
        : createHash('sha256')
            .update(
              canonicalJson({
                to: input.audience,
                event: input.event,
                payload: input.payload,
                ttlSeconds: input.ttlSeconds,
                // Only when given: the hashes of publishes without one stay what they were.
                ...(callbackUrl !== null ? { callbackUrl } : {}),
              }),
            )
            .digest('hex');
    const record: NewNotification = { id: newNotificationId(), publisherId, idempotencyKey, requestHash, ...input };
    if (callbackUrl !== null) {
      await this.store(() => this.webhooks.beforePublish(publisherId, record.id, callbackUrl, input.ttlSeconds), true);
    }
    let created;
    try {
      created = await ('users' in input.audience ? this.toUsers : this.toAudiences).add(record);
      if (created instanceof RateLimitedError) throw created;
    } catch (error) {
      if (error instanceof HeraldError) throw error;
      const sqlState = (error as { code?: unknown }).code;
      if (typeof sqlState === 'string' && sqlState.startsWith('22')) {
        // A data exception: the store refused this content, and a retry would fail alike.
        throw new BadRequestError('the store refused the notification content', [
          { field: 'payload', reason: (error as Error).message },
        ]);
      }
      this.logger.error({ message: 'publish not stored', publisherId, error: (error as Error).message });
      throw new UnavailableError('the notification store is unavailable; nothing was stored, retry later');
    }
    if (!created.created && created.requestHash !== requestHash) throw new IdempotencyConflictError();
    const { notification, recipients } = created;
    if (created.created) {
      this.logger.log({
        message: 'notification published',
        notificationId: notification.id,
        seq: notification.seq,
        publisherId,
        event: notification.event,
        recipients,
      });
      await this.webhooks.published(notification, publisherId, callbackUrl);
      if (callbackUrl !== null) notification.callback = true;
      const kind = 'users' in input.audience ? 'users' : 'topic' in input.audience ? 'topic' : 'all';
      this.metrics.notificationsPublished.inc({ audience: kind });
      if (recipients > 0) {
        await this.router.route(notification, kind, 'users' in input.audience ? input.audience.users : []);
      }
    }
    return { response: { id: notification.id, seq: notification.seq, recipients }, replayed: !created.created };
  }

  /** `publisherId` null: any publisher's notification (the admin console). */
  async get(
    publisherId: string | null,
    id: string,
    { limit, after }: z.output<typeof NotificationQuerySchema>,
  ): Promise<NotificationView> {
    if (!UUID.test(id)) throw new NotFoundError('no such notification');
    const record = await this.store(() => this.notifications.findForPublisher(id.toLowerCase(), publisherId));
    if (!record) throw new NotFoundError('no such notification');
    const [counts, page] = await this.store(() =>
      Promise.all([
        this.notifications.countDeliveries(record.id),
        this.notifications.listDeliveries(record.id, after ?? null, limit + 1),
      ]),
    );
    const items = page.slice(0, limit);
    return {
      id: record.id,
      seq: record.seq,
      event: record.event,
      payload: record.payload,
      audience: record.audience,
      topic: record.topic,
      createdAt: record.createdAt.toISOString(),
      expiresAt: record.expiresAt.toISOString(),
      recipients: record.recipients,
      counts,
      deliveries: {
        items: items.map((d) => ({
          userId: d.userId,
          status: d.status,
          attempts: d.attempts,
          firstSentAt: d.firstSentAt?.toISOString() ?? null,
          lastSentAt: d.lastSentAt?.toISOString() ?? null,
          ackedAt: d.ackedAt?.toISOString() ?? null,
          updatedAt: d.updatedAt.toISOString(),
        })),
        nextCursor: page.length > limit ? items[items.length - 1]!.userId : null,
      },
    };
  }

  /** A read from the store: failing is 503 (retry later), not 500. */
  private async store<T>(read: () => Promise<T>, passRefusals = false): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (passRefusals && error instanceof HeraldError) throw error;
      this.logger.error({ message: 'store read failed', error: (error as Error).message });
      throw new UnavailableError('the notification store is unavailable, retry later');
    }
  }
}
