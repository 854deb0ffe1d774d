import { DatePipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, inject, OnInit, signal } from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { NonNullableFormBuilder, ReactiveFormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';
import type { AdminNotificationSummary, AdminNotificationsResponse } from '@herald/protocol';
import { describeError } from '../core/api-error';
import { RealtimeService } from '../core/realtime.service';
import { LatestProgress } from '../core/progress';
import { NotificationsApi } from './notifications-api';

@Component({
  selector: 'hd-notifications',
  imports: [DatePipe, ReactiveFormsModule, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './notifications.html',
})
export class Notifications implements OnInit {
  private readonly api = inject(NotificationsApi);
  private readonly realtime = inject(RealtimeService);
  protected readonly statuses = ['pending', 'sent', 'acked', 'expired', 'failed'];
  /** `from` and `to` are datetime-local values (local time, no zone), sent as ISO instants. */
  protected readonly form = inject(NonNullableFormBuilder).group({
    event: '',
    userId: '',
    status: '',
    from: '',
    to: '',
  });
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
    this.realtime.events.pipe(takeUntilDestroyed()).subscribe((event) => {
      if (event.type !== 'notification.progress' || !this.latest.offer(event)) return;
      this.items.update((list) =>
        list.map((n) => (n.id === event.id ? { ...n, counts: event.counts, recipients: event.recipients } : n)),
      );
    });
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
      const { from, to, ...filter } = this.form.getRawValue();
      const page = await this.api.list({
        ...filter,
        ...(from ? { from: new Date(from).toISOString() } : {}),
        ...(to ? { to: new Date(to).toISOString() } : {}),
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
