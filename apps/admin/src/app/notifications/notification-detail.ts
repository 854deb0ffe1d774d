import { DatePipe, JsonPipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, DestroyRef, inject, input, OnInit, signal } from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { RouterLink } from '@angular/router';
import type { DeliveryView, NotificationView } from '@herald/protocol';
import { describeError } from '../core/api-error';
import { RealtimeService } from '../core/realtime.service';
import { NotificationsApi } from './notifications-api';

/** One step of a delivery's timeline. */
export interface TimelineStep {
  label: string;
  at: string;
}

/** What happened to one delivery, in order, from the record's timestamps. */
export function timelineOf(createdAt: string, delivery: DeliveryView): TimelineStep[] {
  const steps: TimelineStep[] = [{ label: 'stored', at: createdAt }];
  if (delivery.firstSentAt) steps.push({ label: 'first sent', at: delivery.firstSentAt });
  if (delivery.lastSentAt && delivery.attempts > 1) {
    steps.push({ label: `sent again (attempt ${delivery.attempts})`, at: delivery.lastSentAt });
  }
  if (delivery.ackedAt) steps.push({ label: 'acked', at: delivery.ackedAt });
  else if (delivery.status === 'expired' || delivery.status === 'failed') {
    steps.push({ label: delivery.status, at: delivery.updatedAt });
  }
  return steps;
}

@Component({
  selector: 'hd-notification-detail',
  imports: [DatePipe, JsonPipe, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './notification-detail.html',
})
export class NotificationDetail implements OnInit {
  readonly id = input.required<string>();
  private readonly api = inject(NotificationsApi);
  private readonly realtime = inject(RealtimeService);
  private readonly destroyRef = inject(DestroyRef);
  protected readonly statuses = ['pending', 'sent', 'acked', 'expired', 'failed'] as const;
  protected readonly view = signal<NotificationView | null>(null);
  protected readonly error = signal<string | null>(null);
  protected readonly timeline = timelineOf;
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private loadSeq = 0;

  ngOnInit(): void {
    void this.init();
  }

  private async init(): Promise<void> {
    // When its deliveries move, read it again: the timeline needs the new timestamps.
    // Not an injection context (called from ngOnInit): takeUntilDestroyed is given the DestroyRef.
    this.realtime.events.pipe(takeUntilDestroyed(this.destroyRef)).subscribe((event) => {
      if (event.type === 'notification.progress' && event.id === this.id()) this.reloadSoon();
    });
    this.destroyRef.onDestroy(() => clearTimeout(this.reloadTimer));
    await this.load();
  }

  /** At most one read a second while deliveries move. */
  private reloadSoon(): void {
    this.reloadTimer ??= setTimeout(() => {
      this.reloadTimer = undefined;
      void this.load();
    }, 1000);
  }

  private async load(): Promise<void> {
    const seq = ++this.loadSeq;
    try {
      const view = await this.api.get(this.id());
      // An older read that answers late does not overwrite a newer one.
      if (seq !== this.loadSeq) return;
      this.view.set(view);
      this.error.set(null);
    } catch (error) {
      if (seq === this.loadSeq) this.error.set(describeError(error));
    }
  }
}
