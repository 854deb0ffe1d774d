import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { Queue } from 'bullmq';
import {
  MAX_WEBHOOK_ENDPOINTS,
  UUID_PATTERN,
  WebhookCreateRequestSchema,
  WebhookUpdateRequestSchema,
  type AdminWebhook,
  type AdminWebhookAttemptsResponse,
  type WebhookAttempt,
  type WebhookEndpoint,
  type WebhookEndpointCreated,
  type WebhookSecret,
} from '@herald/protocol';
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { BadRequestError, NotFoundError, storedOr503 } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import type { AttemptRow } from '../record/webhook.repository';
import { AdminEndpointRow, EndpointRow, WebhookEndpointRepository } from '../record/webhook-endpoint.repository';
import { deliveryJob, WEBHOOK_DELIVERY_QUEUE, WebhookDeliveryJobData } from './queues';
import { newSigningSecret } from './signature';
import { WebhookInterest } from './webhook-interest';
import { WebhookTargets } from './webhook-targets';

/** After a rotation the previous secret signs too, this long: receivers change their secret meanwhile. */
const SECRET_GRACE_MS = 24 * 3_600_000;
const NO_SUCH_ENDPOINT = 'no such webhook endpoint for this API key';

function view(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    description: row.description,
    enabled: row.enabled,
    disabledReason: row.disabledReason,
    disabledAt: row.disabledAt?.toISOString() ?? null,
    failingSince: row.failingSince?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

function attemptView(row: AttemptRow): WebhookAttempt {
  return {
    id: row.id,
    messageId: row.messageId,
    type: row.type,
    attempt: row.attempt,
    at: row.at.toISOString(),
    outcome: row.outcome,
    statusCode: row.statusCode,
    latencyMs: row.latencyMs,
    error: row.error,
  };
}

function adminView(row: AdminEndpointRow): AdminWebhook {
  return {
    ...view(row),
    publisherId: row.publisherId,
    pendingMessages: row.pendingMessages,
    attemptsLastHour: row.attemptsLastHour,
    failuresLastHour: row.failuresLastHour,
    lastAttempt: row.lastAttempt ? attemptView(row.lastAttempt) : null,
  };
}

/** A publisher's webhook endpoints (ADR 0027): the rules of `/v1/webhooks` and the console's view. */
@Injectable()
export class WebhookEndpointsService {
  private readonly logger = new Logger(WebhookEndpointsService.name);

  constructor(
    private readonly repository: WebhookEndpointRepository,
    private readonly targets: WebhookTargets,
    private readonly interest: WebhookInterest,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    @InjectQueue(WEBHOOK_DELIVERY_QUEUE) private readonly deliveries: Queue<WebhookDeliveryJobData>,
  ) {}

  async create(
    publisherId: string,
    request: z.output<typeof WebhookCreateRequestSchema>,
  ): Promise<WebhookEndpointCreated> {
    await this.checkRequest(request);
    const secret = newSigningSecret();
    const row = await this.stored(() =>
      this.repository.createEndpoint({ id: randomUUID(), publisherId, secret, ...request }, MAX_WEBHOOK_ENDPOINTS),
    );
    if (!row) {
      throw new BadRequestError(
        `this API key has ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints, the most it may have: delete one first`,
      );
    }
    this.logger.log({ message: 'webhook endpoint created', endpointId: row.id, publisherId, events: row.events });
    await this.interest.refresh();
    return { ...view(row), secret };
  }

  async list(publisherId: string): Promise<WebhookEndpoint[]> {
    return (await this.stored(() => this.repository.listEndpoints(publisherId))).map(view);
  }

  async get(publisherId: string, id: string): Promise<WebhookEndpoint> {
    return view(await this.found(id, () => this.repository.getEndpoint(id, publisherId)));
  }

  async update(
    publisherId: string,
    id: string,
    patch: z.output<typeof WebhookUpdateRequestSchema>,
  ): Promise<WebhookEndpoint> {
    await this.checkRequest(patch);
    const row = await this.found(id, () => this.repository.updateEndpoint(id, publisherId, patch));
    await this.interest.refresh();
    return view(row);
  }

  async remove(publisherId: string, id: string): Promise<void> {
    if (!UUID_PATTERN.test(id) || !(await this.stored(() => this.repository.deleteEndpoint(id, publisherId)))) {
      throw new NotFoundError(NO_SUCH_ENDPOINT);
    }
    this.logger.log({ message: 'webhook endpoint deleted', endpointId: id, publisherId });
    await this.interest.refresh();
  }

  /** Disabled by its publisher, or enabled again: its failures start afresh and what it kept is sent. */
  async setEnabled(publisherId: string, id: string, enabled: boolean): Promise<WebhookEndpoint> {
    const retryFrom = new Date(Date.now() - this.config.webhooks.retryForMs);
    const reason = enabled ? null : 'disabled by its publisher';
    const { endpoint, resumed } = await this.found(id, () =>
      this.repository.setEnabled(id, publisherId, enabled, reason, retryFrom),
    );
    // Tried now under a job id of their own: a retry still delayed for hours finds the try made, and stops.
    if (resumed.length > 0) {
      await this.deliveries.addBulk(resumed.map((m) => deliveryJob(m.id, m.attempts + 1, 0, `enabled-${Date.now()}`)));
    }
    await this.interest.refresh();
    return view(endpoint);
  }

  async rotate(publisherId: string, id: string): Promise<WebhookSecret> {
    const secret = newSigningSecret();
    const until = new Date(Date.now() + SECRET_GRACE_MS);
    await this.found(id, () => this.repository.rotateSecret(id, publisherId, secret, until));
    return { secret, previousSecretValidUntil: until.toISOString() };
  }

  /** The key's default secret (it signs what goes to a publish's `callbackUrl`): made, or made anew. */
  async rotateDefault(publisherId: string): Promise<WebhookSecret> {
    const secret = newSigningSecret();
    const until = await this.stored(() =>
      this.repository.setDefaultSecret(publisherId, secret, new Date(Date.now() + SECRET_GRACE_MS)),
    );
    return { secret, previousSecretValidUntil: until?.toISOString() ?? null };
  }

  async adminList(): Promise<AdminWebhook[]> {
    return (await this.stored(() => this.repository.adminEndpoints(null))).map(adminView);
  }

  async adminAttempts(id: string, limit: number): Promise<AdminWebhookAttemptsResponse> {
    if (!UUID_PATTERN.test(id)) throw new NotFoundError('no such webhook endpoint');
    const [rows, attempts] = await this.stored(() =>
      Promise.all([this.repository.adminEndpoints(id), this.repository.attempts(id, limit)]),
    );
    if (!rows[0]) throw new NotFoundError('no such webhook endpoint');
    return { endpoint: adminView(rows[0]), items: attempts.map(attemptView) };
  }

  /** Where it points, and that `notification.read` exists here (the inbox is on). */
  private async checkRequest(request: { url?: string; events?: string[] }): Promise<void> {
    if (request.events?.includes('notification.read') && this.config.inboxRetentionMs === 0) {
      throw new BadRequestError('notification.read needs the inbox, which is off (HERALD_INBOX_RETENTION_DAYS=0)', [
        { field: 'events', reason: 'notification.read is not sent while the inbox is off' },
      ]);
    }
    if (request.url !== undefined) await this.targets.check('url', request.url);
  }

  private async found<T>(id: string, read: () => Promise<T | null>): Promise<T> {
    const row = UUID_PATTERN.test(id) ? await this.stored(read) : null;
    if (!row) throw new NotFoundError(NO_SUCH_ENDPOINT);
    return row;
  }

  /** A store that fails answers 503: nothing was changed, retry. */
  private stored<T>(work: () => Promise<T>): Promise<T> {
    return storedOr503(this.logger, 'webhook store', 'the webhook store is unavailable; retry', work);
  }
}
