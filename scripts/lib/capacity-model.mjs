// The capacity model behind `npm run capacity` (scripts/capacity.mjs): a load and the measured constants
// (bench/capacity-constants.json) in, a plan out. Each formula is written out in docs/scaling.md, "The model".

const SECONDS_PER_DAY = 86_400;

/** A load no plan serves (a replica cannot keep up with its own work). */
export class PlanError extends Error {}

/** Every constant and assumption the model reads. */
const REQUIRED = {
  replica: [
    'connectionsPerReplica',
    'baseMemoryBytes',
    'memoryPerConnectionBytes',
    'cpuMsPerReplicaSecond',
    'cpuMsPerConnectionSecond',
    'cpuMsPerUnicast',
    'cpuMsPerBroadcastDelivery',
  ],
  postgres: [
    'cpuMsPerReplicaSecond',
    'cpuMsPerConnectionSecond',
    'cpuMsPerUnicast',
    'cpuMsPerBroadcastDelivery',
    'rowsPerUnicast',
    'rowsPerBroadcastDelivery',
    'walBytesPerUnicast',
    'walBytesPerBroadcastDelivery',
    'bytesPerUnicast',
    'bytesPerBroadcastDelivery',
    'bytesPerUser',
  ],
  redis: [
    'commandsPerReplicaSecond',
    'commandsPerConnectionSecond',
    'commandsPerUnicast',
    'commandsPerBroadcast',
    'cpuMsPerReplicaSecond',
    'cpuMsPerConnectionSecond',
    'cpuMsPerUnicast',
    'cpuMsPerBroadcastPerReplica',
    'memoryBytesPerConnection',
  ],
  bus: ['messagesOutPerUnicast', 'messagesInPerUnicast', 'messagesOutPerBroadcast', 'messagesInPerBroadcastPerReplica'],
  assumptions: [
    'replicaCpuCores',
    'replicaMemoryBytes',
    'connectionsPerUser',
    'postgresCpuUtilization',
    'postgresMaxCores',
    'redisShardCpuUtilization',
  ],
};

/**
 * A constant's value for a replica publishing `perReplicaRate` unicasts/s. A plain value is that value; a
 * measured curve is interpolated on log-log axes between its points (costs per notification fall as group
 * commits grow), and held at its end point outside them (`extrapolated` says so).
 */
export function valueAt(entry, perReplicaRate) {
  if (!entry.byReplicaRate) return { value: entry.value, extrapolated: false };
  const points = [...entry.byReplicaRate].sort((a, b) => a.perReplicaPerSecond - b.perReplicaPerSecond);
  const first = points[0];
  const last = points[points.length - 1];
  if (perReplicaRate <= first.perReplicaPerSecond)
    return { value: first.value, extrapolated: perReplicaRate < first.perReplicaPerSecond * 0.95 };
  if (perReplicaRate >= last.perReplicaPerSecond)
    return { value: last.value, extrapolated: perReplicaRate > last.perReplicaPerSecond * 1.05 };
  const upper = points.findIndex((p) => p.perReplicaPerSecond >= perReplicaRate);
  const a = points[upper - 1];
  const b = points[upper];
  const t = Math.log(perReplicaRate / a.perReplicaPerSecond) / Math.log(b.perReplicaPerSecond / a.perReplicaPerSecond);
  if (a.value <= 0 || b.value <= 0) return { value: a.value + t * (b.value - a.value), extrapolated: false };
  return { value: Math.exp(Math.log(a.value) + t * Math.log(b.value / a.value)), extrapolated: false };
}

/** The plan for a load: see docs/scaling.md, "The model", for each formula. */
export function plan(load, doc) {
  const c = doc.constants;
  const a = Object.fromEntries(Object.entries(doc.assumptions).map(([k, v]) => [k, v.value]));
  const extrapolated = new Set();
  const at = (group, name, perReplicaRate) => {
    const { value, extrapolated: out } = valueAt(c[group][name], perReplicaRate);
    if (out && perReplicaRate > 0) extrapolated.add(`${group}.${name}`);
    return value;
  };
  const connections = load.users * a.connectionsPerUser;
  const broadcastDeliveries = load.broadcastsPerSecond * load.broadcastSize;
  const deliveries = load.rate + broadcastDeliveries;

  // Replica CPU (ms per second) for n replicas: each replica's own work, its connections, its share of unicasts
  // (costed at its own rate) and of broadcast deliveries.
  const replicaCpu = (n) =>
    n * c.replica.cpuMsPerReplicaSecond.value +
    connections * c.replica.cpuMsPerConnectionSecond.value +
    load.rate * at('replica', 'cpuMsPerUnicast', load.rate / n) +
    broadcastDeliveries * c.replica.cpuMsPerBroadcastDelivery.value;
  const budgetMs = a.replicaCpuCores * 1000;
  let byCpu = 1;
  while (replicaCpu(byCpu) > byCpu * budgetMs) {
    if (byCpu > 1e7)
      throw new PlanError('no replica count serves this load: a replica cannot keep up with its own work');
    byCpu++;
  }
  extrapolated.clear(); // the search tried rates no plan uses
  const byConnections = Math.ceil(connections / c.replica.connectionsPerReplica.value);
  const usableMemory = a.replicaMemoryBytes - c.replica.baseMemoryBytes.value;
  const byMemory = Math.ceil((connections * c.replica.memoryPerConnectionBytes.value) / usableMemory);
  const replicas = Math.max(byConnections, byMemory, byCpu, 1);
  const perReplicaRate = load.rate / replicas;
  const replicaCpuMs = replicaCpu(replicas);
  const boundBy = replicas === byConnections ? 'connections' : replicas === byMemory ? 'memory' : 'CPU';

  const pgCpuMs =
    replicas * c.postgres.cpuMsPerReplicaSecond.value +
    connections * c.postgres.cpuMsPerConnectionSecond.value +
    load.rate * at('postgres', 'cpuMsPerUnicast', perReplicaRate) +
    broadcastDeliveries * c.postgres.cpuMsPerBroadcastDelivery.value;
  const pgCores = pgCpuMs / 1000 / a.postgresCpuUtilization;
  const rows =
    load.rate * at('postgres', 'rowsPerUnicast', perReplicaRate) +
    broadcastDeliveries * c.postgres.rowsPerBroadcastDelivery.value;
  const walBytes =
    load.rate * at('postgres', 'walBytesPerUnicast', perReplicaRate) +
    broadcastDeliveries * c.postgres.walBytesPerBroadcastDelivery.value;
  const storedPerSecond =
    load.rate * at('postgres', 'bytesPerUnicast', perReplicaRate) +
    broadcastDeliveries * c.postgres.bytesPerBroadcastDelivery.value;
  const storedPerDay = storedPerSecond * SECONDS_PER_DAY;
  const heldDays = Math.max(load.retentionHours / 24, load.inboxDays ?? 0);
  const usersBytes = load.users * c.postgres.bytesPerUser.value;

  const redisCommands =
    replicas * c.redis.commandsPerReplicaSecond.value +
    connections * c.redis.commandsPerConnectionSecond.value +
    load.rate * at('redis', 'commandsPerUnicast', perReplicaRate) +
    load.broadcastsPerSecond * c.redis.commandsPerBroadcast.value;
  // A broadcast's Redis work is taken as all fan-out: one delivery of its message per subscribed replica.
  const broadcastChannelCpuMs = load.broadcastsPerSecond * replicas * c.redis.cpuMsPerBroadcastPerReplica.value;
  const redisCpuMs =
    replicas * c.redis.cpuMsPerReplicaSecond.value +
    connections * c.redis.cpuMsPerConnectionSecond.value +
    load.rate * at('redis', 'cpuMsPerUnicast', perReplicaRate) +
    broadcastChannelCpuMs;
  // Per shard: one core (Redis runs commands on one thread), planned at redisShardCpuUtilization.
  const shardMs = 1000 * a.redisShardCpuUtilization;
  const shards = Math.max(1, Math.ceil(redisCpuMs / shardMs));

  const busOut =
    load.rate * at('bus', 'messagesOutPerUnicast', perReplicaRate) +
    load.broadcastsPerSecond * c.bus.messagesOutPerBroadcast.value;
  const busIn =
    load.rate * at('bus', 'messagesInPerUnicast', perReplicaRate) +
    load.broadcastsPerSecond * replicas * c.bus.messagesInPerBroadcastPerReplica.value;

  // Walls: what cannot be split, and how far the load can grow before it is reached. Replicas and Redis shards
  // are added freely (any replica takes any connection; Redis Cluster spreads presence and channels).
  const walls = [
    {
      name: 'PostgreSQL primary CPU',
      need: pgCores,
      ceiling: a.postgresMaxCores,
      unit: 'cores',
      why: 'the record has one primary: every publish, ack and cursor write goes there',
    },
    {
      name: 'Redis shard of the broadcast channel',
      need: broadcastChannelCpuMs / shardMs,
      ceiling: 1,
      unit: 'shards',
      why: 'every broadcast is one message on one channel, so one shard fans it out to every replica',
    },
    {
      name: 'one Redis (without a cluster)',
      need: redisCpuMs / shardMs,
      ceiling: 1,
      unit: 'shards',
      why: 'presence beats and routing on a single Redis; a Redis Cluster lifts it',
      liftedBy: 'Redis Cluster (REDIS_CLUSTER_NODES)',
    },
  ].map((w) => ({ ...w, headroom: w.need > 0 ? w.ceiling / w.need : Infinity }));
  const hard = walls.filter((w) => !w.liftedBy).sort((x, y) => x.headroom - y.headroom);
  const firstWall = hard[0];

  return {
    load: { ...load, connections, broadcastDeliveriesPerSecond: broadcastDeliveries, deliveriesPerSecond: deliveries },
    replicas: {
      count: replicas,
      boundBy,
      byConnections,
      byMemory,
      byCpu,
      perReplicaUnicastPerSecond: perReplicaRate,
      cpuCoresTotal: replicaCpuMs / 1000,
      cpuPerReplica: replicaCpuMs / 1000 / replicas,
      memoryBytesPerReplica:
        c.replica.baseMemoryBytes.value + (connections / replicas) * c.replica.memoryPerConnectionBytes.value,
      unicastPerSecondPerReplicaAtBudget: budgetMs / at('replica', 'cpuMsPerUnicast', perReplicaRate),
      broadcastDeliveriesPerSecondPerReplicaAtBudget: budgetMs / c.replica.cpuMsPerBroadcastDelivery.value,
    },
    postgres: {
      cpuCoresBusy: pgCpuMs / 1000,
      cpuCores: pgCores,
      rowsPerSecond: rows,
      walBytesPerSecond: walBytes,
      walBytesPerDay: walBytes * SECONDS_PER_DAY,
      storedBytesPerDay: storedPerDay,
      // Kept for the retention after final, or the inbox window from publish when that is longer (ADR 0026).
      heldDays,
      storedBytesAtRetention: storedPerDay * heldDays + usersBytes,
      usersBytes,
    },
    redis: {
      commandsPerSecond: redisCommands,
      cpuCoresBusy: redisCpuMs / 1000,
      shards,
      commandsPerSecondPerShard: redisCpuMs > 0 ? (redisCommands * shardMs) / redisCpuMs : Infinity,
      memoryBytes: connections * c.redis.memoryBytesPerConnection.value,
    },
    bus: { publishedPerSecond: busOut, receivedPerSecond: busIn, receivedPerSecondPerReplica: busIn / replicas },
    walls,
    firstWall: {
      name: firstWall.name,
      headroom: firstWall.headroom,
      need: firstWall.need,
      ceiling: firstWall.ceiling,
      unit: firstWall.unit,
    },
    extrapolated: [...extrapolated],
  };
}

/** The constants and assumptions a document lacks, or holds without a usable number, as `group.name`. */
export function missingConstants(doc) {
  const missing = [];
  for (const [group, names] of Object.entries(REQUIRED)) {
    for (const name of names) {
      const entry = group === 'assumptions' ? doc.assumptions?.[name] : doc.constants?.[group]?.[name];
      const ok =
        entry &&
        (Number.isFinite(entry.value) ||
          (Array.isArray(entry.byReplicaRate) &&
            entry.byReplicaRate.length > 0 &&
            entry.byReplicaRate.every((p) => p.perReplicaPerSecond > 0 && Number.isFinite(p.value))));
      if (!ok) missing.push(`${group}.${name}`);
    }
  }
  return missing;
}
