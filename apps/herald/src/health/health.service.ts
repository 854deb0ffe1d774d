import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../redis/redis-client';
import { DataSource } from 'typeorm';
import { DrainState } from '../common/lifecycle.module';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { REDIS } from '../redis/redis.module';

export interface ReadyReport {
  /** `draining`: shutting down; it finishes what it holds but takes nothing new. */
  status: 'ok' | 'unavailable' | 'draining';
  replicaId: string;
  checks: { postgres: 'up' | 'down'; redis: 'up' | 'down' };
}

const CHECK_TIMEOUT_MS = 2000;

function within<T>(work: Promise<T>): Promise<T> {
  return Promise.race([
    work,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timeout')), CHECK_TIMEOUT_MS).unref()),
  ]);
}

@Injectable()
export class HealthService {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly drain: DrainState,
  ) {}

  async ready(): Promise<ReadyReport> {
    const [postgres, redis] = await Promise.all([
      within(this.dataSource.query('SELECT 1')).then(
        () => 'up' as const,
        () => 'down' as const,
      ),
      within(this.redis.ping()).then(
        () => 'up' as const,
        () => 'down' as const,
      ),
    ]);
    return {
      status: this.drain.isDraining ? 'draining' : postgres === 'up' && redis === 'up' ? 'ok' : 'unavailable',
      replicaId: this.config.replicaId,
      checks: { postgres, redis },
    };
  }
}
