import { DestroyRef, inject, Injectable, signal } from '@angular/core';
import { SseParser } from '@herald/client';
import type { AdminEvent, AdminStats } from '@herald/protocol';
import { Subject } from 'rxjs';
import { AuthService } from './auth.service';

export type RealtimeStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

/**
 * The one stream of live admin events (GET /admin/api/events), turned into
 * typed events and signals. It reconnects with backoff and jitter; features
 * subscribe to `events` and read `stats`.
 */
@Injectable({ providedIn: 'root' })
export class RealtimeService {
  private readonly auth = inject(AuthService);
  private readonly subject = new Subject<AdminEvent>();
  private controller: AbortController | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;

  readonly events = this.subject.asObservable();
  readonly status = signal<RealtimeStatus>('stopped');
  /** The latest statistics the server pushed (every few seconds while someone watches). */
  readonly stats = signal<AdminStats | null>(null);
  /** Resolves once the stream is open: read snapshots after it, so nothing falls in between. */
  private openWaiters: (() => void)[] = [];

  constructor() {
    inject(DestroyRef).onDestroy(() => this.stop());
  }

  /** Starts the stream if it is not running; resolves when it is open. */
  start(): Promise<void> {
    if (this.status() === 'live') return Promise.resolve();
    const opened = new Promise<void>((resolve) => this.openWaiters.push(resolve));
    if (this.status() === 'stopped') void this.connect();
    return opened;
  }

  stop(): void {
    clearTimeout(this.retryTimer);
    this.controller?.abort();
    this.controller = null;
    this.status.set('stopped');
  }

  private async connect(): Promise<void> {
    const token = this.auth.token();
    if (!token) {
      this.stop();
      return;
    }
    this.status.set(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const controller = new AbortController();
    this.controller = controller;
    try {
      const response = await fetch('/admin/api/events', {
        headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
        signal: controller.signal,
      });
      if (response.status === 401) {
        this.stop();
        this.auth.logout();
        return;
      }
      if (!response.ok || !response.body) throw new Error(`events answered ${response.status}`);
      this.attempt = 0;
      this.status.set('live');
      for (const resolve of this.openWaiters.splice(0)) resolve();
      const parser = new SseParser((event) => this.dispatch(event.event, event.data));
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // Aborted by stop(), or the network failed: decided below.
    }
    if (controller.signal.aborted || this.controller !== controller) return;
    this.attempt += 1;
    this.status.set('reconnecting');
    const ceiling = Math.min(30_000, 1000 * 2 ** (this.attempt - 1));
    this.retryTimer = setTimeout(() => void this.connect(), ceiling / 2 + Math.random() * (ceiling / 2));
  }

  private dispatch(type: string, data: string): void {
    try {
      if (type === 'stats') this.stats.set(JSON.parse(data) as AdminStats);
      else this.subject.next(JSON.parse(data) as AdminEvent);
    } catch {
      // A malformed event is skipped; the next snapshot corrects the view.
    }
  }
}
