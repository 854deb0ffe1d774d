import { Injectable, Logger } from '@nestjs/common';
import type { WebhookEventType } from '@herald/protocol';
import { WebhookEndpointRepository } from '../record/webhook-endpoint.repository';

/** While PostgreSQL is away, a failed read of who wants events is logged at most this often. */
const WARN_EVERY_MS = 30_000;

/**
 * Who wants webhook events, as this replica last read it (WebhookEvents reads it again every second): the
 * publishers with an enabled endpoint and what each wants, and until when a publish's callback URL may
 * still hear of its notification. With nobody at all, nothing is recorded: no statement runs on a publish,
 * an ack, a failure or a read.
 */
@Injectable()
export class WebhookInterest {
  private readonly logger = new Logger(WebhookInterest.name);
  private byPublisher = new Map<string, Set<WebhookEventType>>();
  private callbacksUntil = 0;
  private pendingWork = false;
  private lastWarned = 0;

  constructor(private readonly repository: WebhookEndpointRepository) {}

  /** Reads it again; a failed read keeps what was known. */
  async refresh(): Promise<void> {
    try {
      const { endpoints, callbacksUntil, pendingWork } = await this.repository.interest();
      const byPublisher = new Map<string, Set<WebhookEventType>>();
      for (const { publisherId, events } of endpoints) {
        const wanted = byPublisher.get(publisherId) ?? new Set<WebhookEventType>();
        for (const event of events) wanted.add(event);
        byPublisher.set(publisherId, wanted);
      }
      this.byPublisher = byPublisher;
      // Never below what a delivered notification told (expectCallback): the read may predate its publish.
      this.callbacksUntil = Math.max(this.callbacksUntil, callbacksUntil?.getTime() ?? 0);
      this.pendingWork = pendingWork;
    } catch (error) {
      if (Date.now() - this.lastWarned < WARN_EVERY_MS) return;
      this.lastWarned = Date.now();
      this.logger.warn({
        message: 'could not read webhook endpoints; using the last known',
        error: (error as Error).message,
      });
    }
  }

  /**
   * This replica sends a notification whose publish named a callback URL, live until `expiresAtMs` (ms since
   * the epoch): its acks are kept from now, not from the next read.
   */
  expectCallback(expiresAtMs: number | undefined): void {
    if (expiresAtMs !== undefined && expiresAtMs > this.callbacksUntil) this.callbacksUntil = expiresAtMs;
  }

  /** Anyone at all: an enabled endpoint, or a callback URL whose notification has not expired. */
  get any(): boolean {
    return this.byPublisher.size > 0 || this.callbacksUntil > Date.now();
  }

  /** Anything to do: someone wants events, or events or messages are left from when someone did. */
  get sending(): boolean {
    return this.any || this.pendingWork;
  }

  /** Whether an enabled endpoint of `publisherId` wants `type`. */
  wants(publisherId: string, type: WebhookEventType): boolean {
    return this.byPublisher.get(publisherId)?.has(type) === true;
  }
}
