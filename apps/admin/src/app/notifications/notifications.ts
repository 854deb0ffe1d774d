import { DatePipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, DestroyRef, inject, OnInit, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';
import type { AdminNotificationSummary, AdminNotificationsResponse } from '@herald/protocol';
import { describeError } from '../core/api-error';
import { RealtimeService } from '../core/realtime.service';
import { LatestProgress } from '../core/progress';
import { HistoryFilter, NotificationsApi } from './notifications-api';

@Component({
  selector: 'hd-notifications',
  imports: [DatePipe, FormsModule, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <h1>Notifications</h1>
    @if (reach(); as r) {
      <p class="muted" data-testid="history-reach">
        @if (r.oldestAt) {
          History reaches back to {{ r.oldestAt | date: 'medium' }};
        } @else {
          No notification is kept;
        }
        each is kept {{ r.retentionHours }} h after it is final.
      </p>
    }
    <form class="card row wrap" (ngSubmit)="search()" aria-label="Filters">
      <label>Event <input name="event" [(ngModel)]="filter.event" /></label>
      <label>User <input name="userId" [(ngModel)]="filter.userId" /></label>
      <label
        >Status
        <select name="status" [(ngModel)]="filter.status">
          <option value="">any</option>
          @for (s of statuses; track s) {
            <option [value]="s">{{ s }}</option>
          }
        </select>
      </label>
      <label>From <input name="from" type="datetime-local" [(ngModel)]="from" /></label>
      <label>To <input name="to" type="datetime-local" [(ngModel)]="to" /></label>
      <button type="submit" [disabled]="loading()">Search</button>
    </form>
    @if (error()) {
      <p class="error" role="alert">{{ error() }}</p>
    }
    @if (loading() && items().length === 0) {
      <p class="muted">Loading…</p>
    } @else if (items().length === 0) {
      <p class="muted" data-testid="notifications-empty">No notification matches.</p>
    } @else {
      <div class="table-wrap">
        <table data-testid="notifications-table">
          <thead>
            <tr>
              <th>#</th>
              <th>Event</th>
              <th>Publisher</th>
              <th>Created</th>
              <th>Recipients</th>
              <th>Acked</th>
              <th>Open</th>
              <th>Expired</th>
              <th>Failed</th>
            </tr>
          </thead>
          <tbody>
            @for (n of items(); track n.id) {
              <tr [attr.data-id]="n.id">
                <td>
                  <a [routerLink]="['/notifications', n.id]">{{ n.seq }}</a>
                </td>
                <td>
                  <a [routerLink]="['/notifications', n.id]">{{ n.event }}</a>
                </td>
                <td>{{ n.publisherId }}</td>
                <td>{{ n.createdAt | date: 'medium' }}</td>
                <td>{{ n.recipients }}</td>
                <td>{{ n.counts.acked }}</td>
                <td>{{ n.counts.pending + n.counts.sent }}</td>
                <td>{{ n.counts.expired }}</td>
                <td>{{ n.counts.failed }}</td>
              </tr>
            }
          </tbody>
        </table>
      </div>
      @if (next()) {
        <button type="button" (click)="more()" [disabled]="loading()">Older</button>
      }
    }
  `,
})
export class Notifications implements OnInit {
  private readonly api = inject(NotificationsApi);
  private readonly realtime = inject(RealtimeService);
  protected readonly statuses = ['pending', 'sent', 'acked', 'expired', 'failed'];
  protected filter: HistoryFilter = { event: '', userId: '', status: '' };
  protected from = '';
  protected to = '';
  protected readonly items = signal<AdminNotificationSummary[]>([]);
  protected readonly next = signal<string | null>(null);
  protected readonly reach = signal<AdminNotificationsResponse['reach'] | null>(null);
  protected readonly loading = signal(false);
  protected readonly error = signal<string | null>(null);
  private readonly latest = new LatestProgress();
  /** Bumped by each new search: answers to an older one are dropped. */
  private searchSeq = 0;

  constructor() {
    // Counts move live on the rows shown.
    const subscription = this.realtime.events.subscribe((event) => {
      if (event.type !== 'notification.progress' || !this.latest.offer(event)) return;
      this.items.update((list) =>
        list.map((n) => (n.id === event.id ? { ...n, counts: event.counts, recipients: event.recipients } : n)),
      );
    });
    inject(DestroyRef).onDestroy(() => subscription.unsubscribe());
  }

  ngOnInit(): void {
    void this.search();
  }

  async search(): Promise<void> {
    this.searchSeq += 1;
    this.items.set([]);
    this.next.set(null);
    await this.load();
  }

  async more(): Promise<void> {
    await this.load(this.next() ?? undefined);
  }

  private async load(before?: string): Promise<void> {
    const seq = this.searchSeq;
    this.loading.set(true);
    this.error.set(null);
    try {
      const page = await this.api.list({
        ...this.filter,
        ...(this.from ? { from: new Date(this.from).toISOString() } : {}),
        ...(this.to ? { to: new Date(this.to).toISOString() } : {}),
        ...(before ? { before } : {}),
      });
      if (seq !== this.searchSeq) return;
      this.items.update((list) => [...list, ...page.items]);
      this.next.set(page.nextCursor);
      this.reach.set(page.reach);
    } catch (error) {
      if (seq === this.searchSeq) this.error.set(describeError(error));
    } finally {
      if (seq === this.searchSeq) this.loading.set(false);
    }
  }
}
