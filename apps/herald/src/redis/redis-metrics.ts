import { Inject, Injectable } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { MetricsService } from '../metrics/metrics.service';
import { withTimeout } from '../common/timeout';
import { REDIS, RedisClient } from './redis-client';

/** A redirection ioredis' Cluster follows; it emits no event for one, so its error handler is watched. */
type HandleError = (error: Error, ttl: unknown, handlers: unknown) => void;

/**
 * The Redis Cluster as this replica sees it, for Prometheus: each node its command client knows, with its
 * role and whether its connection is ready, and the MOVED / ASK redirections it followed. Nothing on one Redis.
 */
@Injectable()
export class RedisMetrics {
  constructor(@Inject(REDIS) redis: RedisClient, metrics: MetricsService) {
    if (!(redis instanceof Cluster)) return;
    const cluster = redis as Cluster & { handleError: HandleError };
    const handleError = cluster.handleError.bind(cluster);
    cluster.handleError = (error, ttl, handlers) => {
      const kind = error.message.split(' ')[0];
      if (kind === 'MOVED' || kind === 'ASK') metrics.redisRedirections.inc({ kind: kind.toLowerCase() });
      handleError(error, ttl, handlers);
    };
    metrics.gauge(
      'herald_redis_cluster_nodes',
      "Redis Cluster nodes this replica's command client knows, by role (master, replica) and state (ready, or the connection's status otherwise).",
      ['role', 'state'],
      (gauge) => {
        gauge.reset();
        for (const role of ['master', 'slave'] as const) {
          for (const node of cluster.nodes(role)) {
            const labels = { role: role === 'slave' ? 'replica' : role, state: node.status };
            gauge.inc(labels);
          }
        }
      },
    );
    metrics.gauge(
      'herald_redis_cluster_ok',
      '1 when the Redis Cluster says cluster_state:ok to this replica (CLUSTER INFO at scrape), 0 when it says fail, -1 when it did not answer.',
      [],
      async (gauge) => {
        try {
          const info = String(await withTimeout(cluster.cluster('INFO'), 2000, 'CLUSTER INFO'));
          gauge.set(/cluster_state:ok/.test(info) ? 1 : 0);
        } catch {
          gauge.set(-1);
        }
      },
    );
  }
}
