import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { takeUntilDestroyed, toSignal } from '@angular/core/rxjs-interop';
import { FormControl, FormGroup, NonNullableFormBuilder, ReactiveFormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';
import type { DeliveryStatus, PublishRequest, PublishResponse } from '@herald/protocol';
import { describeError } from '../core/api-error';
import { RealtimeService } from '../core/realtime.service';
import { BroadcastApi } from './broadcast-api';
import { LatestProgress } from '../core/progress';
import { AudienceKind, BroadcastDraft, buildRequest } from './broadcast-form';

/** A random idempotency key; crypto.randomUUID exists only in secure contexts (not plain HTTP on a LAN). */
function idempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The form's controls, one per field of the draft that buildRequest reads. */
type DraftForm = FormGroup<{ [K in keyof BroadcastDraft]: FormControl<BroadcastDraft[K]> }>;

interface Progress {
  recipients: number;
  counts: Record<DeliveryStatus, number>;
}

@Component({
  selector: 'hd-broadcast',
  imports: [ReactiveFormsModule, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './broadcast.html',
})
export class Broadcast {
  private readonly api = inject(BroadcastApi);
  private readonly realtime = inject(RealtimeService);
  private readonly fb = inject(NonNullableFormBuilder);
  protected readonly statuses: DeliveryStatus[] = ['sent', 'acked', 'pending', 'expired', 'failed'];

  protected readonly form: DraftForm = this.fb.group({
    audience: this.fb.control<AudienceKind>('all'),
    topic: '',
    users: '',
    event: '',
    payload: '',
    ttlSeconds: '',
  });
  /** Which audience field is shown follows the radio buttons. */
  protected readonly audience = toSignal(this.form.controls.audience.valueChanges, {
    initialValue: this.form.controls.audience.value,
  });
  protected readonly errors = signal<Partial<Record<keyof BroadcastDraft, string>>>({});
  protected readonly error = signal<string | null>(null);
  protected readonly busy = signal(false);
  protected readonly confirming = signal<{ request: PublishRequest; recipients: number; key: string } | null>(null);
  protected readonly sent = signal<PublishResponse | null>(null);
  protected readonly progress = signal<Progress | null>(null);
  private readonly latest = new LatestProgress();

  constructor() {
    this.realtime.events.pipe(takeUntilDestroyed()).subscribe((event) => {
      if (event.type !== 'notification.progress') return;
      // Progress can beat the HTTP answer, and replicas report out of order: keep the newest of each.
      if (this.latest.offer(event) && event.id === this.sent()?.id) {
        this.progress.set({ recipients: event.recipients, counts: event.counts });
      }
    });
  }

  async review(): Promise<void> {
    this.error.set(null);
    const built = buildRequest(this.form.getRawValue());
    if (!built.ok) {
      this.errors.set(built.errors);
      return;
    }
    this.errors.set({});
    this.busy.set(true);
    try {
      const { recipients } = await this.api.preview(built.request);
      // One key per reviewed broadcast: pressing Send again after a lost answer cannot send it twice.
      this.confirming.set({ request: built.request, recipients, key: idempotencyKey() });
    } catch (error) {
      this.error.set(describeError(error));
    } finally {
      this.busy.set(false);
    }
  }

  async send(request: PublishRequest, key: string): Promise<void> {
    this.busy.set(true);
    try {
      this.progress.set(null);
      const response = await this.api.send(request, key);
      this.sent.set(response);
      const known = this.latest.get(response.id);
      this.progress.set(known ? { recipients: known.recipients, counts: known.counts } : null);
      this.confirming.set(null);
    } catch (error) {
      this.error.set(describeError(error));
    } finally {
      this.busy.set(false);
    }
  }
}
