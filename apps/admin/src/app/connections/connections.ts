import { DatePipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, computed, DestroyRef, inject, OnInit, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import type { AdminConnection } from '@herald/protocol';
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

  ngOnInit(): void {
    void this.init();
  }

  private async init(): Promise<void> {
    // Events first, snapshot second: what happens in between is applied on top.
    const pending: Parameters<typeof applyConnectionEvent>[1][] = [];
    let ready = false;
    const subscription = this.realtime.events.subscribe((event) => {
      if (!ready) {
        pending.push(event);
        return;
      }
      this.all.update((list) => applyConnectionEvent(list, event));
      // The event names the connection; its user's topics and last ack come from one read.
      if (event.type === 'connection.opened') void this.fillIn(event.connection.userId);
    });
    this.destroyRef.onDestroy(() => subscription.unsubscribe());
    try {
      await this.realtime.start();
      const snapshot = await this.api.list();
      this.all.set(pending.reduce(applyConnectionEvent, snapshot.items));
    } catch (error) {
      this.error.set(describeError(error));
    } finally {
      ready = true;
      this.loading.set(false);
    }
  }

  private async fillIn(userId: string): Promise<void> {
    try {
      const fresh = await this.api.list(userId);
      const byId = new Map(fresh.items.map((c) => [c.connectionId, c]));
      this.all.update((list) =>
        list.map((c) => {
          const known = byId.get(c.connectionId);
          return known ? { ...c, topics: known.topics, lastAckAt: known.lastAckAt } : c;
        }),
      );
    } catch {
      // The row stays without topics; the next visit reads them.
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
