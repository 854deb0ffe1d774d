import { DestroyRef, inject, Injectable, signal } from '@angular/core';
import { SseParser } from '@herald/client';
import type { AdminEvent, AdminStats, TicketResponse } from '@herald/protocol';
import { Subject } from 'rxjs';
import { AuthService } from './auth.service';

export type RealtimeStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

/** The server writes a heartbeat every 15 s: this much silence means the link is dead. */
const SILENCE_LIMIT_MS = 45_000;

/**
 * The one stream of live admin events (GET /admin/api/events, opened with a
 * one-time ticket from POST /admin/api/tickets), turned into
 * typed events and signals. It reconnects with backoff and jitter, and gives
 * up on a silent link. Features subscribe to `events`, read `stats`, and read
 * a fresh snapshot whenever `opened` moves (events of a gap are not replayed).
 */
@Injectable({ providedIn: 'root' })
export class RealtimeService {
  private readonly auth = inject(AuthService);
  private readonly subject = new Subject<AdminEvent>();
  private controller: AbortController | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private lastData = 0;
  private attempt = 0;
  /** Settled when an attempt opens the stream or fails: callers then read their snapshot either way. */
  private waiters: (() => void)[] = [];

  readonly events = this.subject.asObservable();
  readonly status = signal<RealtimeStatus>('stopped');
  /** Counts the times the stream (re)opened: a change means "read your snapshot again". */
  readonly opened = signal(0);
  /** The latest statistics the server pushed (every few seconds while someone watches). */
  readonly stats = signal<AdminStats | null>(null);

  constructor() {
    inject(DestroyRef).onDestroy(() => this.stop());
  }

  /** Starts the stream if it is not running; resolves once this attempt opened it or failed. */
  start(): Promise<void> {
    if (this.status() === 'live') return Promise.resolve();
    const settled = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.status() === 'stopped') void this.connect();
    return settled;
  }

  stop(): void {
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    this.controller?.abort();
    this.controller = null;
    this.status.set('stopped');
    this.settle();
  }

  private settle(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
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
    let closedBy: { code: number; reason: string } | undefined;
    try {
      // A one-time ticket opens the stream (as an EventSource would need): the session stays out of every URL.
      const minted = await fetch('/admin/api/tickets', {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}` },
        signal: controller.signal,
      });
      if (minted.status === 401) {
        this.stop();
        this.auth.logout();
        return;
      }
      if (!minted.ok) throw new Error(`tickets answered ${minted.status}`);
      const { ticket } = (await minted.json()) as TicketResponse;
      const response = await fetch(`/admin/api/events?ticket=${encodeURIComponent(ticket)}`, {
        headers: { Accept: 'text/event-stream' },
        signal: controller.signal,
      });
      // A 401 here is the ticket's (used, or late), not the session's: the next attempt mints another, and
      // only a refused mint ends the session.
      if (!response.ok || !response.body) throw new Error(`events answered ${response.status}`);
      this.attempt = 0;
      this.status.set('live');
      this.opened.update((n) => n + 1);
      this.settle();
      this.lastData = Date.now();
      clearInterval(this.watchdog);
      this.watchdog = setInterval(() => {
        if (Date.now() - this.lastData > SILENCE_LIMIT_MS) controller.abort();
      }, 5_000);
      const parser = new SseParser((event) => {
        if (event.event === 'close') closedBy = parse<{ code: number; reason: string }>(event.data);
        else this.dispatch(event.event, event.data);
      });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.lastData = Date.now();
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // Aborted (by stop() or the watchdog), or the network failed: decided below.
    }
    clearInterval(this.watchdog);
    this.settle();
    if (this.controller !== controller || this.status() === 'stopped') return;
    if (closedBy?.code === 1008 && /session/.test(closedBy.reason)) {
      // The session ended: the server will refuse the next attempt anyway.
      this.stop();
      this.auth.logout();
      return;
    }
    this.attempt += 1;
    this.status.set('reconnecting');
    const ceiling = Math.min(30_000, 1000 * 2 ** (this.attempt - 1));
    this.retryTimer = setTimeout(() => void this.connect(), ceiling / 2 + Math.random() * (ceiling / 2));
  }

  private dispatch(type: string, data: string): void {
    if (type === 'stats') {
      const stats = parse<AdminStats>(data);
      if (stats) this.stats.set(stats);
      return;
    }
    // A malformed event is skipped; the next snapshot corrects the view.
    const event = parse<AdminEvent>(data);
    if (event) this.subject.next(event);
  }
}

function parse<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
