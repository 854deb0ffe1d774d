import { InjectQueue } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, Job, Queue, Worker } from 'bullmq';
import { AttemptResult, MessageToSend, WebhookRepository } from '../record/webhook.repository';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { closeWorker } from '../redelivery/worker-shutdown';
import { MetricsService } from '../metrics/metrics.service';
import { deliveryJob, WEBHOOK_DELIVERY_QUEUE, WebhookDeliveryJobData } from './queues';
import { signatureHeader } from './signature';
import { WebhookInterest } from './webhook-interest';
import { WebhookTargets } from './webhook-targets';
import type { WebhookResponse } from './webhook-http';

/** Each retry waits this many times longer than the one before, at most MAX_RETRY_DELAY_MS. */
const RETRY_GROWTH = 4;
const MAX_RETRY_DELAY_MS = 4 * 3_600_000;
/**
 * Tries one replica makes to one target at once. More wait a second (as they are): an endpoint that
 * answers slowly or not at all holds at most this many of the replica's HERALD_WEBHOOK_CONCURRENCY slots,
 * and the other publishers' messages go on.
 */
const MAX_IN_FLIGHT_PER_TARGET = 4;
const BUSY_TARGET_DELAY_MS = 1000;
/** How often a replica without its worker looks whether there is something to send. */
const START_CHECK_MS = 1000;

/** The delay before try `attempt + 1`: HERALD_WEBHOOK_RETRY_MS × 4^(attempt−1), at most 4 h, ±20% jitter. */
export function retryDelayMs(firstMs: number, attempt: number, random = Math.random): number {
  const base = Math.min(firstMs * RETRY_GROWTH ** Math.min(attempt - 1, 20), MAX_RETRY_DELAY_MS);
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** What an attempt that did not get a 2xx says, for the console and the disabled reason. */
function describe(response: WebhookResponse): string | null {
  switch (response.kind) {
    case 'ok':
      return null;
    case 'http':
      return `HTTP ${response.status}${response.bodyExcerpt ? `: ${response.bodyExcerpt.slice(0, 200)}` : ''}`;
    case 'redirect':
    case 'refused':
    case 'network':
    case 'timeout':
      return response.error;
  }
}

/**
 * The one processor of the webhook deliveries (ADR 0027): each job is one try of one message. It signs
 * the message's fixed body (Standard Webhooks: `webhook-id` the message's id, the same on every retry),
 * posts it through WebhookTargets' guard, records the attempt, and queues the next try (backoff with
 * jitter) until HERALD_WEBHOOK_RETRY_HOURS from the message's making; an endpoint whose tries have all
 * failed for HERALD_WEBHOOK_DISABLE_AFTER_HOURS is disabled, and keeps its messages for when it is enabled.
 */
@Injectable()
export class WebhookDeliveriesProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(WebhookDeliveriesProcessor.name);
  private worker: Worker<WebhookDeliveryJobData> | undefined;
  private starter: NodeJS.Timeout | undefined;
  /** Tries in flight on this replica, by target (an endpoint's id, or a callback URL). */
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly repository: WebhookRepository,
    private readonly targets: WebhookTargets,
    private readonly interest: WebhookInterest,
    @InjectQueue(WEBHOOK_DELIVERY_QUEUE) private readonly queue: Queue<WebhookDeliveryJobData>,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * The worker starts once there is something to send (WebhookInterest.sending), then runs until shutdown:
   * an idle BullMQ worker with HERALD_WEBHOOK_CONCURRENCY slots costs CPU, which a replica of a cluster
   * with no endpoint and no callback URL does not pay (a catch-up's replica CPU rose a fifth with it).
   */
  onApplicationBootstrap(): void {
    this.starter = setInterval(() => this.startWhenNeeded(), START_CHECK_MS);
    this.starter.unref();
    this.startWhenNeeded();
  }

  private startWhenNeeded(): void {
    if (this.worker || !this.interest.sending) return;
    clearInterval(this.starter);
    this.worker = new Worker<WebhookDeliveryJobData>(WEBHOOK_DELIVERY_QUEUE, (job, token) => this.process(job, token), {
      connection: this.queue.opts.connection,
      prefix: this.queue.opts.prefix,
      concurrency: this.config.webhooks.concurrency,
    });
    this.worker.on('error', () => undefined); // logged by WebhookBatchesProcessor's queue listeners, rate-limited
    this.logger.log({ message: 'webhook delivery worker started' });
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.starter);
    if (this.worker) await closeWorker(this.worker, this.config.shutdownGraceMs);
  }

  async process(job: Job<WebhookDeliveryJobData>, token?: string): Promise<string> {
    const { messageId, attempt } = job.data;
    const message = await this.repository.messageToSend(messageId);
    // Delivered, given up, deleted with its endpoint, or this try already made (a job queued twice).
    if (!message || message.status !== 'pending' || message.attempts >= attempt) return 'stale';
    if (!message.enabled) {
      await this.repository.park(messageId);
      return 'parked';
    }
    const target = message.endpointId ?? message.url ?? '';
    const busy = this.inFlight.get(target) ?? 0;
    if (busy >= MAX_IN_FLIGHT_PER_TARGET) {
      await job.moveToDelayed(Date.now() + BUSY_TARGET_DELAY_MS, token);
      throw new DelayedError();
    }
    if (!(await this.repository.claim(messageId, attempt))) return 'stale';
    this.inFlight.set(target, busy + 1);
    try {
      return await this.attempt(message, attempt);
    } finally {
      const left = (this.inFlight.get(target) ?? 1) - 1;
      if (left > 0) this.inFlight.set(target, left);
      else this.inFlight.delete(target);
    }
  }

  private async attempt(message: MessageToSend, attempt: number): Promise<string> {
    const messageId = message.id;
    const { webhooks } = this.config;
    const timestamp = Math.floor(Date.now() / 1000);
    const response: WebhookResponse =
      message.url === null || message.secrets.length === 0
        ? { kind: 'refused', error: 'no URL or signing secret', latencyMs: 0 }
        : await this.targets.post({
            url: message.url,
            headers: {
              'webhook-id': message.id,
              'webhook-timestamp': String(timestamp),
              'webhook-signature': signatureHeader(message.secrets, message.id, timestamp, message.body),
            },
            body: message.body,
            timeoutMs: webhooks.timeoutMs,
          });
    this.metrics.webhookAttempts.inc({ type: message.type, outcome: response.kind });
    this.metrics.webhookAttemptSeconds.observe(response.latencyMs / 1000);
    const error = describe(response);
    const deadline = message.createdAt.getTime() + webhooks.retryForMs;
    let result: AttemptResult;
    if (response.kind === 'ok') result = { next: 'delivered' };
    else if (Date.now() >= deadline) result = { next: 'failed' };
    else
      result = {
        next: 'retry',
        at: new Date(Math.min(Date.now() + retryDelayMs(webhooks.retryMs, attempt), deadline)),
      };
    const { disabled } = await this.repository.recordAttempt(
      {
        messageId,
        endpointId: message.endpointId,
        attempt,
        outcome: response.kind,
        statusCode: 'status' in response && response.status !== undefined ? response.status : null,
        latencyMs: Math.round(response.latencyMs),
        error,
      },
      result,
      webhooks.disableAfterMs,
      `disabled after failing for ${webhooks.disableAfterMs / 3_600_000} h; last error: ${error ?? ''}`,
    );
    if (disabled) {
      this.metrics.webhookEndpointsDisabled.inc();
      this.logger.warn({ message: 'webhook endpoint disabled', endpointId: message.endpointId, error });
    }
    if (result.next === 'retry') {
      const job = deliveryJob(messageId, attempt + 1, Math.max(0, result.at.getTime() - Date.now()));
      await this.queue.add(job.name, job.data, job.opts);
    } else {
      this.metrics.webhookMessages.inc({ result: result.next });
      if (result.next === 'failed') {
        this.logger.warn({ message: 'webhook message given up', messageId, endpointId: message.endpointId, error });
      }
    }
    return response.kind;
  }
}
