import { DatePipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, inject, OnInit, signal } from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { NonNullableFormBuilder, ReactiveFormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';
import type { AdminNotificationSummary, AdminNotificationsResponse } from '@herald/protocol';
import { RealtimeService } from '../core/realtime.service';
import { PagedList } from '../core/paged-list';
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
  private readonly list = new PagedList<AdminNotificationSummary>();
  protected readonly items = this.list.items;
  protected readonly next = this.list.next;
  protected readonly loading = this.list.loading;
  protected readonly error = this.list.error;
  protected readonly reach = signal<AdminNotificationsResponse['reach'] | null>(null);
  private readonly latest = new LatestProgress();

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
    this.list.reset();
    await this.load();
  }

  async more(): Promise<void> {
    await this.load(this.next() ?? undefined);
  }

  private async load(before?: string): Promise<void> {
    const { from, to, ...filter } = this.form.getRawValue();
    await this.list.load(
      () =>
        this.api.list({
          ...filter,
          ...(from ? { from: new Date(from).toISOString() } : {}),
          ...(to ? { to: new Date(to).toISOString() } : {}),
          ...(before ? { before } : {}),
        }),
      (page) => this.reach.set(page.reach),
    );
  }
}
