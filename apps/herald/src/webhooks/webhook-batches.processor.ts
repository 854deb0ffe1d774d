import { InjectQueue } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { MAX_WEBHOOK_ITEMS, type WebhookExpiredItem, type WebhookRecipientItem } from '@herald/protocol';
import { Queue, Worker } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { NewMessage, TakenGroup, TakenItem, WebhookRepository } from '../record/webhook.repository';
import { closeWorker } from '../redelivery/worker-shutdown';
import {
  deliveryJob,
  WEBHOOK_BATCH_JOB,
  WEBHOOK_BATCH_QUEUE,
  WEBHOOK_BATCH_SCHEDULER_ID,
  WEBHOOK_DELIVERY_QUEUE,
  WebhookBatchJobData,
  WebhookDeliveryJobData,
} from './queues';
import { WebhookInterest } from './webhook-interest';

const BATCH_EVERY_MS = 1000;
/** Every this many batches: queue again what lost its job (Redis emptied), and forget old messages. */
const HOUSEKEEPING_EVERY = 30;
/** A pending message this late past its try time lost its job. */
const OVERDUE_GRACE_MS = 30_000;
/** Delivered and given-up messages (with their attempts) are kept this long, for the console. */
const HISTORY_MS = 7 * 86_400_000;
const ERROR_LOG_EVERY_MS = 10_000;
/** How often a replica without its worker looks whether there is something to batch. */
const START_CHECK_MS = 1000;

/** A Standard Webhooks message id: `msg_` and 32 hex digits. */
function messageId(): string {
  return `msg_${randomUUID().replaceAll('-', '')}`;
}

/** The body's items of a group: one per recipient event, or per expired notification with what expired. */
function itemsOf(group: TakenGroup): (WebhookRecipientItem | WebhookExpiredItem)[] {
  if (group.type !== 'notification.expired') {
    return group.items.map((item) => ({
      notificationId: item.notificationId,
      event: item.event,
      userId: item.userId ?? '',
      at: item.at.toISOString(),
    }));
  }
  return group.items.flatMap((item: TakenItem): WebhookExpiredItem[] => {
    if (item.expiry === null) return [];
    const c = item.expiry.counts;
    // Past the TTL anything still open has expired, whether or not the sweep has marked it yet.
    const expired = (c.expired ?? 0) + (c.pending ?? 0) + (c.sent ?? 0);
    if (expired === 0) return [];
    return [
      {
        notificationId: item.notificationId,
        event: item.event,
        expiresAt: item.expiry.expiresAt,
        recipients: item.expiry.recipients,
        acked: c.acked ?? 0,
        failed: c.failed ?? 0,
        expired,
      },
    ];
  });
}

/**
 * The webhook batcher (ADR 0027): once a second (a BullMQ job scheduler; one replica takes each run), the
 * events recorded so far become messages, at most MAX_WEBHOOK_ITEMS per target and type each: one per
 * enabled endpoint of the publisher that wants the type, and one per callback URL. So an endpoint gets at
 * most one new message of each type a second, however many replicas saw the acks. Each message's first try
 * is queued at once.
 */
@Injectable()
export class WebhookBatchesProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(WebhookBatchesProcessor.name);
  private worker: Worker<WebhookBatchJobData> | undefined;
  private refresh: NodeJS.Timeout | undefined;
  private starter: NodeJS.Timeout | undefined;
  private runs = 0;
  private lastErrorLogged = 0;

  constructor(
    private readonly repository: WebhookRepository,
    @InjectQueue(WEBHOOK_BATCH_QUEUE) private readonly queue: Queue<WebhookBatchJobData>,
    @InjectQueue(WEBHOOK_DELIVERY_QUEUE) private readonly deliveries: Queue<WebhookDeliveryJobData>,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
    private readonly interest: WebhookInterest,
  ) {
    metrics.gauge(
      'herald_webhook_pending',
      'Webhook work waiting (the same on every replica; -1 when PostgreSQL did not answer): events not yet in a message, and messages not yet delivered (retries included).',
      ['kind'],
      async (gauge) => {
        try {
          const depth = await this.repository.depth();
          gauge.set({ kind: 'events' }, depth.events);
          gauge.set({ kind: 'messages' }, depth.messages);
        } catch {
          gauge.set({ kind: 'events' }, -1);
          gauge.set({ kind: 'messages' }, -1);
        }
      },
    );
  }

  /**
   * The schedule is kept from the start; the worker starts once there is something to batch or send
   * (WebhookInterest.sending), then runs until shutdown: a replica of a cluster where nobody wants webhooks
   * runs no webhook worker at all.
   */
  async onApplicationBootstrap(): Promise<void> {
    this.queue.on('error', (error) => this.redisError(error));
    this.deliveries.on('error', (error) => this.redisError(error));
    this.starter = setInterval(() => this.startWhenNeeded(), START_CHECK_MS);
    this.starter.unref();
    this.startWhenNeeded();
    await this.ensureScheduled();
    // As the sweep's: brings the schedule back after Redis lost its data.
    this.refresh = setInterval(() => {
      this.ensureScheduled().catch((error: unknown) =>
        this.logger.warn({ message: 'could not refresh the webhook batch schedule', error: (error as Error).message }),
      );
    }, 30_000);
  }

  private startWhenNeeded(): void {
    if (this.worker || !this.interest.sending) return;
    clearInterval(this.starter);
    this.worker = new Worker<WebhookBatchJobData>(WEBHOOK_BATCH_QUEUE, () => this.run(), {
      connection: this.queue.opts.connection,
      prefix: this.queue.opts.prefix,
      concurrency: 1,
    });
    this.worker.on('error', (error) => this.redisError(error));
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.refresh);
    clearInterval(this.starter);
    if (this.worker) await closeWorker(this.worker, this.config.shutdownGraceMs);
  }

  private async ensureScheduled(): Promise<void> {
    await this.queue.upsertJobScheduler(
      WEBHOOK_BATCH_SCHEDULER_ID,
      { every: BATCH_EVERY_MS },
      { name: WEBHOOK_BATCH_JOB, data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 100 } } },
    );
  }

  private redisError(error: Error): void {
    if (Date.now() - this.lastErrorLogged < ERROR_LOG_EVERY_MS) return;
    this.lastErrorLogged = Date.now();
    this.logger.warn({ message: 'webhook queues cannot reach Redis; BullMQ retries', error: error.message });
  }

  /** One run: the due events into messages, their first tries queued; now and then, housekeeping. */
  async run(): Promise<{ messages: number }> {
    const messages = await this.repository.batch(MAX_WEBHOOK_ITEMS, (groups) => this.build(groups));
    if (messages.length > 0) {
      this.metrics.webhookMessages.inc({ result: 'made' }, messages.length);
      // Committed first: a message whose job is lost here is queued again by the housekeeping.
      await this.deliveries.addBulk(messages.map((m) => deliveryJob(m.id, 1)));
    }
    if (++this.runs % HOUSEKEEPING_EVERY === 0) await this.housekeeping();
    return { messages: messages.length };
  }

  private async build(groups: TakenGroup[]): Promise<NewMessage[]> {
    const publishers = [...new Set(groups.filter((g) => g.callbackUrl === null).map((g) => g.publisherId))];
    const endpoints = publishers.length > 0 ? await this.repository.enabledEndpoints(publishers) : [];
    const timestamp = new Date().toISOString();
    const messages: NewMessage[] = [];
    for (const group of groups) {
      const items = itemsOf(group);
      if (items.length === 0) continue;
      const body = JSON.stringify({ type: group.type, timestamp, data: { items } });
      const base = { publisherId: group.publisherId, type: group.type, body, items: items.length };
      if (group.callbackUrl !== null) {
        messages.push({ ...base, id: messageId(), endpointId: null, callbackUrl: group.callbackUrl });
        continue;
      }
      for (const endpoint of endpoints) {
        if (endpoint.publisherId !== group.publisherId || !endpoint.events.includes(group.type)) continue;
        messages.push({ ...base, id: messageId(), endpointId: endpoint.id, callbackUrl: null });
      }
    }
    return messages;
  }

  private async housekeeping(): Promise<void> {
    const overdue = await this.repository.overdue(OVERDUE_GRACE_MS, 1000);
    if (overdue.length > 0) {
      this.logger.warn({ message: 'webhook messages had lost their job; queued again', count: overdue.length });
      await this.deliveries.addBulk(overdue.map(({ id, attempts }) => deliveryJob(id, attempts + 1)));
    }
    await this.repository.prune(new Date(Date.now() - HISTORY_MS));
  }
}
