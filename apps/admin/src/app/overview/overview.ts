import { HttpClient } from '@angular/common/http';
import { ChangeDetectionStrategy, Component, computed, inject, OnInit, signal } from '@angular/core';
import type { AdminStats } from '@herald/protocol';
import { firstValueFrom } from 'rxjs';
import { describeError } from '../core/api-error';
import { RealtimeService } from '../core/realtime.service';
import { sparklinePoints } from './sparkline';

@Component({
  selector: 'hd-overview',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <h1>Overview</h1>
    @if (error()) {
      <p class="error" role="alert">{{ error() }}</p>
    }
    @if (stats(); as s) {
      <section class="tiles" aria-label="Live counters">
        <div class="card tile">
          <span>Connections</span><b data-testid="stat-connections">{{ s.connections.total }}</b>
        </div>
        <div class="card tile">
          <span>Notifications this minute</span
          ><b data-testid="stat-per-minute">{{ s.notificationsPerMinute.at(-1)?.count ?? 0 }}</b>
        </div>
        <div class="card tile">
          <span>Ack latency p50 / p95</span><b>{{ ms(s.ackLatencyMs.p50) }} / {{ ms(s.ackLatencyMs.p95) }}</b>
        </div>
        <div class="card tile">
          <span>Redeliveries (1 h)</span><b>{{ s.redeliveriesLastHour }}</b>
        </div>
        <div class="card tile">
          <span>Failures (1 h)</span><b>{{ s.failuresLastHour }}</b>
        </div>
      </section>
      <section class="card">
        <h2>Notifications per minute, last 30 minutes</h2>
        <svg
          class="chart"
          viewBox="0 0 300 60"
          preserveAspectRatio="none"
          role="img"
          [attr.aria-label]="'Notifications per minute; now ' + (s.notificationsPerMinute.at(-1)?.count ?? 0)"
        >
          <polyline
            [attr.points]="points()"
            fill="none"
            stroke="currentColor"
            stroke-width="2"
            vector-effect="non-scaling-stroke"
          />
        </svg>
        <p class="muted">
          Connections per replica:
          @for (r of replicas(); track r[0]) {
            <span class="metric"
              >{{ r[0] }} <b>{{ r[1] }}</b></span
            >
          } @empty {
            none right now
          }
        </p>
      </section>
    } @else if (!error()) {
      <p class="muted">Loading…</p>
    }
  `,
})
export class Overview implements OnInit {
  private readonly http = inject(HttpClient);
  private readonly realtime = inject(RealtimeService);
  private readonly first = signal<AdminStats | null>(null);
  protected readonly error = signal<string | null>(null);
  /** The server pushes fresh statistics on the live stream; the first ones come from one read. */
  protected readonly stats = computed(() => this.realtime.stats() ?? this.first());
  protected readonly points = computed(() =>
    sparklinePoints(
      (this.stats()?.notificationsPerMinute ?? []).map((m) => m.count),
      300,
      60,
    ),
  );
  protected readonly replicas = computed(() => Object.entries(this.stats()?.connections.perReplica ?? {}));

  ngOnInit(): void {
    void this.init();
  }

  private async init(): Promise<void> {
    try {
      this.first.set(await firstValueFrom(this.http.get<AdminStats>('/admin/api/stats')));
    } catch (error) {
      this.error.set(describeError(error));
    }
  }

  protected ms(value: number | null): string {
    return value === null ? '—' : `${value} ms`;
  }
}
