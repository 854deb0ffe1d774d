import { DatePipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, computed, effect, inject, input, signal, untracked } from '@angular/core';
import { RouterLink } from '@angular/router';
import type { AdminWebhook, WebhookAttempt } from '@herald/protocol';
import { LatestRead } from '../core/latest-read';
import { WebhooksApi } from './webhooks-api';
import { isFailure, OUTCOME_MEANING, stateOf } from './webhook-state';

/** Attempts listed when an endpoint opens, and at most ("Show more" goes from one to the other). */
export const ATTEMPTS_FIRST = 50;
export const ATTEMPTS_MOST = 200;

/**
 * One webhook endpoint (issue 30): its settings and state, the disabled reason in full, and its latest
 * attempts (time, type, try number, outcome, HTTP status, latency, error), latest first. Read when opened
 * and on Refresh.
 */
@Component({
  selector: 'hd-webhook-detail',
  imports: [DatePipe, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './webhook-detail.html',
})
export class WebhookDetail {
  /** The route's `:id`. */
  readonly id = input.required<string>();
  private readonly api = inject(WebhooksApi);
  protected readonly endpoint = signal<AdminWebhook | null>(null);
  protected readonly attempts = signal<WebhookAttempt[]>([]);
  protected readonly limit = signal(ATTEMPTS_FIRST);
  private readonly read = new LatestRead();
  protected readonly loading = this.read.loading;
  protected readonly error = this.read.error;
  /** A full page may have more behind it; past the most the API lists, there is nothing more to ask. */
  protected readonly canShowMore = computed(
    () => this.limit() < ATTEMPTS_MOST && this.attempts().length >= this.limit(),
  );
  protected readonly stateOf = stateOf;
  protected readonly isFailure = isFailure;
  protected readonly meaning = OUTCOME_MEANING;
  protected readonly most = ATTEMPTS_MOST;

  constructor() {
    // Another endpoint in the route (the same view, reused): start again from its first attempts.
    effect(() => {
      this.id();
      untracked(() => {
        this.endpoint.set(null);
        this.attempts.set([]);
        this.error.set(null);
        this.limit.set(ATTEMPTS_FIRST);
        void this.load();
      });
    });
  }

  /** Up to ATTEMPTS_MOST attempts instead of the first ATTEMPTS_FIRST. */
  async showMore(): Promise<void> {
    this.limit.set(ATTEMPTS_MOST);
    await this.load();
  }

  /** Reads the endpoint and its latest attempts again, as many as are shown. */
  async load(): Promise<void> {
    const [id, limit] = [this.id(), this.limit()];
    await this.read.run(
      () => this.api.attempts(id, limit),
      ({ endpoint, items }) => {
        this.endpoint.set(endpoint);
        this.attempts.set(items);
      },
    );
  }
}
