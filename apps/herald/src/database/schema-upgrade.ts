import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { HeraldConfig } from '../config/config.schema';
import { RETIRED_REDELIVERY_QUEUE } from '../redelivery/queues';
import { RedisClient, scanKeys } from '../redis/redis-client';
import { RedisKeys } from '../redis/redis-keys';
import { PresenceRepository, presenceTtlMs } from '../routing/presence.repository';
import { runMigrations, SCHEMA_VERSION, SHARED_SCHEMA_FLOOR } from './data-source';
import { passUpgradeFence } from './upgrade-fence';

/**
 * Deletes what only the previous version used in Redis: the jobs of its `redelivery` queue (one per batch
 * of sends; ADR 0009 retired it). No replica of the new version reads them, and the sweep resends what they
 * would have checked at its `next_attempt_at`. Returns how many keys went.
 */
export async function retirePreviousQueues(redis: RedisClient, keys: RedisKeys): Promise<number> {
  const found = await scanKeys(redis, keys.bullQueuePattern(RETIRED_REDELIVERY_QUEUE));
  // One key per UNLINK: on a cluster, the keys are in as many slots.
  const removed = await Promise.all(found.map((key) => redis.unlink(key)));
  return removed.reduce((sum, n) => sum + n, 0);
}

/**
 * The schema brought to this build's, behind the fence: what a replica does at boot and what
 * `npm run migrate` does. The fence runs first, so nothing is converted while an old replica serves;
 * once migrations were applied, the previous version's queue goes. Returns the migrations applied.
 */
export async function migrateBehindFence(
  dataSource: DataSource,
  redis: RedisClient,
  config: HeraldConfig,
): Promise<string[]> {
  const keys = RedisKeys.of(config);
  const logger = new Logger('UpgradeFence');
  await passUpgradeFence(
    new PresenceRepository(redis, keys),
    { schema: SCHEMA_VERSION, floor: SHARED_SCHEMA_FLOOR, waitMs: presenceTtlMs(config.presenceHeartbeatMs) },
    logger,
  );
  const applied = await runMigrations(dataSource);
  if (applied.length > 0) {
    const removed = await retirePreviousQueues(redis, keys);
    if (removed > 0) {
      logger.log({ message: "previous version's redelivery queue removed", keys: removed });
    }
  }
  return applied;
}
