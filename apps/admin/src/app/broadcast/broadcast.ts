import { ChangeDetectionStrategy, Component, DestroyRef, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';
import type { DeliveryStatus, PublishRequest, PublishResponse } from '@herald/protocol';
import { describeError } from '../core/api-error';
import { RealtimeService } from '../core/realtime.service';
import { BroadcastApi } from './broadcast-api';
import { LatestProgress } from '../core/progress';
import { BroadcastDraft, buildRequest } from './broadcast-form';

/** A random idempotency key; crypto.randomUUID exists only in secure contexts (not plain HTTP on a LAN). */
function idempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

interface Progress {
  recipients: number;
  counts: Record<DeliveryStatus, number>;
}

@Component({
  selector: 'hd-broadcast',
  imports: [FormsModule, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <h1>Broadcast</h1>
    <form class="card stack" (ngSubmit)="review()" novalidate>
      <fieldset>
        <legend>Audience</legend>
        <label><input type="radio" name="audience" value="all" [(ngModel)]="draft.audience" /> Everyone</label>
        <label><input type="radio" name="audience" value="topic" [(ngModel)]="draft.audience" /> A topic</label>
        <label><input type="radio" name="audience" value="users" [(ngModel)]="draft.audience" /> A list of users</label>
      </fieldset>
      @if (draft.audience === 'topic') {
        <label for="topic">Topic</label>
        <input id="topic" name="topic" [(ngModel)]="draft.topic" [attr.aria-invalid]="!!errors().topic" />
        @if (errors().topic) {
          <p class="error" role="alert">{{ errors().topic }}</p>
        }
      }
      @if (draft.audience === 'users') {
        <label for="users">User ids</label>
        <textarea
          id="users"
          name="users"
          rows="2"
          [(ngModel)]="draft.users"
          [attr.aria-invalid]="!!errors().users"
          placeholder="alice, bob"
        ></textarea>
        @if (errors().users) {
          <p class="error" role="alert">{{ errors().users }}</p>
        }
      }
      <label for="event">Event</label>
      <input
        id="event"
        name="event"
        [(ngModel)]="draft.event"
        placeholder="maintenance"
        [attr.aria-invalid]="!!errors().event"
      />
      @if (errors().event) {
        <p class="error" role="alert">{{ errors().event }}</p>
      }
      <label for="payload">Payload (JSON, optional)</label>
      <textarea
        id="payload"
        name="payload"
        rows="5"
        class="mono"
        [(ngModel)]="draft.payload"
        [attr.aria-invalid]="!!errors().payload"
        placeholder='{"text": "Back at 22:00"}'
      ></textarea>
      @if (errors().payload) {
        <p class="error" role="alert" data-testid="payload-error">{{ errors().payload }}</p>
      }
      <label for="ttl">TTL in seconds (optional)</label>
      <input
        id="ttl"
        name="ttl"
        inputmode="numeric"
        [(ngModel)]="draft.ttlSeconds"
        [attr.aria-invalid]="!!errors().ttlSeconds"
      />
      @if (errors().ttlSeconds) {
        <p class="error" role="alert">{{ errors().ttlSeconds }}</p>
      }
      @if (error()) {
        <p class="error" role="alert">{{ error() }}</p>
      }
      <button type="submit" [disabled]="busy()">Review</button>
    </form>

    @if (confirming(); as pending) {
      <section class="card confirm" role="dialog" aria-modal="false" aria-labelledby="confirm-title">
        <h2 id="confirm-title">Send “{{ pending.request.event }}”?</h2>
        <p data-testid="confirm-recipients">
          It will reach <b>{{ pending.recipients }}</b> {{ pending.recipients === 1 ? 'user' : 'users' }}.
        </p>
        <div class="row">
          <button type="button" (click)="send(pending.request, pending.key)" [disabled]="busy()">Send</button>
          <button type="button" class="link" (click)="confirming.set(null)">Cancel</button>
        </div>
      </section>
    }

    @if (sent(); as done) {
      <section class="card" data-testid="broadcast-progress">
        <h2>Progress of #{{ done.seq }}</h2>
        <dl class="counts">
          <div>
            <dt>Recipients</dt>
            <dd data-testid="progress-recipients">{{ progress()?.recipients ?? done.recipients }}</dd>
          </div>
          @for (status of statuses; track status) {
            <div>
              <dt>{{ status }}</dt>
              <dd [attr.data-testid]="'progress-' + status">{{ progress()?.counts?.[status] ?? 0 }}</dd>
            </div>
          }
        </dl>
        <a [routerLink]="['/notifications', done.id]">Delivery timeline</a>
      </section>
    }
  `,
})
export class Broadcast {
  private readonly api = inject(BroadcastApi);
  private readonly realtime = inject(RealtimeService);
  protected readonly statuses: DeliveryStatus[] = ['sent', 'acked', 'pending', 'expired', 'failed'];

  protected draft: BroadcastDraft = { audience: 'all', topic: '', users: '', event: '', payload: '', ttlSeconds: '' };
  protected readonly errors = signal<Partial<Record<keyof BroadcastDraft, string>>>({});
  protected readonly error = signal<string | null>(null);
  protected readonly busy = signal(false);
  protected readonly confirming = signal<{ request: PublishRequest; recipients: number; key: string } | null>(null);
  protected readonly sent = signal<PublishResponse | null>(null);
  protected readonly progress = signal<Progress | null>(null);
  private readonly latest = new LatestProgress();

  constructor() {
    const subscription = this.realtime.events.subscribe((event) => {
      if (event.type !== 'notification.progress') return;
      // Progress can beat the HTTP answer, and replicas report out of order: keep the newest of each.
      if (this.latest.offer(event) && event.id === this.sent()?.id) {
        this.progress.set({ recipients: event.recipients, counts: event.counts });
      }
    });
    inject(DestroyRef).onDestroy(() => subscription.unsubscribe());
  }

  async review(): Promise<void> {
    this.error.set(null);
    const built = buildRequest(this.draft);
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
