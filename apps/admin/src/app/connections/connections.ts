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
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { RouterLink } from '@angular/router';
import type { AdminConnection, AdminEvent } from '@herald/protocol';
import { describeError } from '../core/api-error';
import { RealtimeService } from '../core/realtime.service';
import { ConnectionsApi } from './connections-api';
import { applyConnectionEvent, perReplica } from './connections-store';

@Component({
  selector: 'hd-connections',
  imports: [DatePipe, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './connections.html',
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
    this.realtime.events.pipe(takeUntilDestroyed(this.destroyRef)).subscribe((event) => {
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
    this.destroyRef.onDestroy(() => clearTimeout(this.resyncTimer));
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
