import { DatePipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, inject, OnInit, signal } from '@angular/core';
import { RouterLink } from '@angular/router';
import type { AdminWebhook } from '@herald/protocol';
import { LatestRead } from '../core/latest-read';
import { WebhooksApi } from './webhooks-api';
import { isFailure, OUTCOME_MEANING, stateOf } from './webhook-state';

/**
 * Every publisher's webhook endpoints (issue 30): their state (the disabled reason in full, since when one
 * fails), what waits to be sent, the last hour and the last attempt. Read when opened and on Refresh: webhook
 * attempts are not on the event stream.
 */
@Component({
  selector: 'hd-webhooks',
  imports: [DatePipe, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './webhooks.html',
})
export class Webhooks implements OnInit {
  private readonly api = inject(WebhooksApi);
  protected readonly items = signal<AdminWebhook[]>([]);
  protected readonly loaded = signal(false);
  private readonly read = new LatestRead();
  protected readonly loading = this.read.loading;
  protected readonly error = this.read.error;
  protected readonly stateOf = stateOf;
  protected readonly isFailure = isFailure;
  protected readonly meaning = OUTCOME_MEANING;

  ngOnInit(): void {
    void this.load();
  }

  async load(): Promise<void> {
    await this.read.run(
      () => this.api.list(),
      ({ items }) => {
        this.items.set(items);
        this.loaded.set(true);
      },
    );
  }
}
