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
  templateUrl: './overview.html',
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
