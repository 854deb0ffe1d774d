import { DatePipe } from '@angular/common';
import {
  ChangeDetectionStrategy,
  Component,
  computed,
  DestroyRef,
  effect,
  inject,
  OnInit,
  signal,
  untracked,
} from '@angular/core';
import { FormsModule } from '@angular/forms';
import type { AdminConnection, AdminEvent } from '@herald/protocol';
import { describeError } from '../core/api-error';
import { RealtimeService } from '../core/realtime.service';
import { ConnectionsApi } from './connections-api';
import { applyConnectionEvent, perReplica } from './connections-store';

@Component({
  selector: 'hd-connections',
  imports: [DatePipe, FormsModule],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <h1>Connections</h1>
    <section class="card row wrap" aria-label="Totals">
      <span class="metric"
        ><b data-testid="connections-total">{{ all().length }}</b> live</span
      >
      @for (replica of replicas(); track replica.replicaId) {
        <span class="metric"
          >{{ replica.replicaId }}: <b>{{ replica.count }}</b></span
        >
      }
      <label class="grow">
        <span class="sr-only">Filter by user</span>
        <input
          type="search"
          placeholder="Filter by user id"
          [ngModel]="filter()"
          (ngModelChange)="filter.set($event)"
          data-testid="connections-filter"
        />
      </label>
    </section>
    @if (error()) {
      <p class="error" role="alert">{{ error() }}</p>
    }
    @if (loading()) {
      <p class="muted">Loading connections…</p>
    } @else if (shown().length === 0) {
      <p class="muted" data-testid="connections-empty">
        {{ filter() ? 'No live connection for this user.' : 'Nobody is connected right now.' }}
      </p>
    } @else {
      <div class="table-wrap">
        <table data-testid="connections-table">
          <thead>
            <tr>
              <th>User</th>
              <th>Replica</th>
              <th>Connected since</th>
              <th>Address</th>
              <th>User agent</th>
              <th>Topics</th>
              <th>Last ack</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            @for (c of shown(); track c.connectionId) {
              <tr [attr.data-user]="c.userId" [attr.data-connection]="c.connectionId">
                <td>{{ c.userId }}</td>
                <td>{{ c.replicaId }}</td>
                <td>{{ c.connectedAt | date: 'medium' }}</td>
                <td>{{ c.remoteAddress }}</td>
                <td class="clip" [title]="c.userAgent">{{ c.userAgent || '—' }}</td>
                <td>{{ c.topics.join(', ') || '—' }}</td>
                <td>{{ c.lastAckAt ? (c.lastAckAt | date: 'mediumTime') : '—' }}</td>
                <td>
                  <button
                    type="button"
                    class="danger"
                    (click)="disconnect(c)"
                    [disabled]="closing().has(c.connectionId)"
                  >
                    Disconnect
                  </button>
                </td>
              </tr>
            }
          </tbody>
        </table>
      </div>
    }
  `,
})
export class Connections implements OnInit {
  private readonly api = inject(ConnectionsApi);
  private readonly realtime = inject(RealtimeService);
  private readonly destroyRef = inject(DestroyRef);

  protected readonly all = signal<AdminConnection[]>([]);
  protected readonly filter = signal('');
  protected readonly loading = signal(true);
  protected readonly error = signal<string | null>(null);
  protected readonly closing = signal(new Set<string>());
  protected readonly replicas = computed(() => perReplica(this.all()));
  protected readonly shown = computed(() => {
    const filter = this.filter().trim().toLowerCase();
    return filter ? this.all().filter((c) => c.userId.toLowerCase().includes(filter)) : this.all();
  });

  private ready = false;
  private synced = false;
  private pending: AdminEvent[] = [];
  private resyncTimer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    const subscription = this.realtime.events.subscribe((event) => {
      if (!this.ready) {
        this.pending.push(event);
        return;
      }
      this.all.update((list) => applyConnectionEvent(list, event));
      // Openings carry no topics or last ack: read them once things settle, not once per opening.
      if (event.type === 'connection.opened') this.resyncSoon();
    });
    // Each time the stream (re)opens, what happened in the gap is read afresh.
    effect(() => {
      if (this.realtime.opened() > 0) untracked(() => void this.resync());
    });
    this.destroyRef.onDestroy(() => {
      subscription.unsubscribe();
      clearTimeout(this.resyncTimer);
    });
  }

  ngOnInit(): void {
    void this.init();
  }

  private async init(): Promise<void> {
    // Opening the stream reads a snapshot (the effect above); if it cannot open, read one anyway.
    await this.realtime.start();
    if (!this.synced) await this.resync();
    this.loading.set(false);
  }

  private resyncSoon(): void {
    this.resyncTimer ??= setTimeout(() => {
      this.resyncTimer = undefined;
      void this.resync();
    }, 1000);
  }

  /** A fresh snapshot, with the events that arrive while it is read applied on top. */
  private async resync(): Promise<void> {
    this.ready = false;
    this.pending = [];
    try {
      const snapshot = await this.api.list();
      this.all.set(this.pending.reduce(applyConnectionEvent, snapshot.items));
      this.synced = true;
      this.error.set(null);
    } catch (error) {
      this.error.set(describeError(error));
    } finally {
      this.ready = true;
      this.pending = [];
    }
  }

  async disconnect(connection: AdminConnection): Promise<void> {
    this.closing.update((set) => new Set(set).add(connection.connectionId));
    try {
      await this.api.disconnect(connection.connectionId);
    } catch (error) {
      this.error.set(describeError(error));
      this.closing.update((set) => {
        const next = new Set(set);
        next.delete(connection.connectionId);
        return next;
      });
    }
  }
}
