/**
 * The capacity constants from the three phases' windows: every cost per unit of work (a connection-second,
 * a connect, a unicast notification, a broadcast delivery), less what the same setup did idle meanwhile.
 * scripts/capacity.mjs reads the document this makes; docs/scaling.md explains each number.
 */
import { CONFIG_VARIABLES } from '../../apps/herald/src/config/config-variables';
import type { BroadcastResult, IdleResult, UnicastResult } from './types';
import { Counters, perUnit, Window } from './window';

/** A measured constant: its value, unit, and how it was measured. */
export interface Measured {
  value: number;
  unit: string;
  how: string;
}

/** A constant that depends on how many notifications/s each replica publishes (group commits grow with it). */
export interface ByReplicaRate {
  byReplicaRate: { perReplicaPerSecond: number; value: number }[];
  unit: string;
  how: string;
}

/** A planning choice, not a measurement: its value and where it comes from. */
export interface Assumption {
  value: number;
  unit: string;
  source: string;
}

export interface ConstantsDocument {
  format: 'herald-capacity-constants/1';
  measured: Record<string, unknown>;
  constants: Record<'replica' | 'postgres' | 'redis' | 'bus', Record<string, Measured | ByReplicaRate>>;
  assumptions: Record<string, Assumption>;
  observed: Record<string, unknown>;
}

/** The cap each replica runs with: HERALD_MAX_CONNECTIONS's default, read from the server's own table. */
const MAX_CONNECTIONS_DEFAULT = Number(CONFIG_VARIABLES.HERALD_MAX_CONNECTIONS.default);

const round = (value: number, digits = 4) => Number(value.toPrecision(digits));

/** Per second of a window that did nothing but exist (units 1). */
function perSecond(window: Window, key: string): number {
  return (window.delta[key] ?? 0) / window.seconds;
}

/** Every constant counts work or bytes, so is at least 0: a difference below 0 is noise around a cost of 0. */
const BELOW_NOISE = ' (the difference came out below 0, within the noise: taken as 0)';

function measured(value: number, unit: string, how: string): Measured {
  return value < 0 ? { value: 0, unit, how: how + BELOW_NOISE } : { value: round(value), unit, how };
}

export function deriveConstants(
  idle: IdleResult,
  unicast: UnicastResult,
  broadcast: BroadcastResult,
  wholeServer: boolean,
  measuredMeta: Record<string, unknown>,
): ConstantsDocument {
  const pgCpu = wholeServer ? 'cpu.postgresAll' : 'cpu.postgres';
  const pgCpuHow = wholeServer
    ? 'every process of the private PostgreSQL server (backends, WAL writer, checkpointer, autovacuum), /proc'
    : "the backends of the run's database, /proc (a shared server: background processes not counted)";
  const { empty, connect, idle: idleWindow } = idle.windows;
  const perConnectionSecond = (key: string) => (perUnit(idleWindow, empty)[key] ?? 0) / idleWindow.seconds;
  const perConnect = (key: string) => perUnit(connect, empty)[key] ?? 0;
  const unicastRates = unicast.rates.map((r) => ({ rate: r, unit: perUnit(r.window, unicast.idle) }));
  const byRate = (key: string, unit: string, how: string): ByReplicaRate => {
    const points = unicastRates.map(({ rate, unit: u }) => ({
      perReplicaPerSecond: round(rate.perReplicaRate),
      value: round(u[key] ?? 0),
    }));
    const noisy = points.some((p) => p.value < 0);
    return {
      byReplicaRate: points.map((p) => ({ ...p, value: Math.max(0, p.value) })),
      unit,
      how: noisy ? how + BELOW_NOISE : how,
    };
  };
  const delivery: Counters = perUnit(broadcast.broadcast, broadcast.idle);
  const perDelivery = (key: string) => delivery[key] ?? 0;
  const broadcasts = broadcast.broadcasts;
  const deliveries = broadcast.broadcast.units;
  const perBroadcast = (key: string) => perDelivery(key) * (deliveries / broadcasts);
  const rates = unicast.rates.map((r) => r.rate);
  const rateList =
    rates.length > 1 ? `${rates.slice(0, -1).join(', ')} and ${rates[rates.length - 1]!}` : `${rates[0]}`;
  const unicastHow = `${unicast.replicas} replicas, ${unicast.users} users, single-user publishes to random users at ${rateList}/s, each received and acked; less the same setup idle`;
  const broadcastHow = `${broadcast.replicas} replicas, ${broadcast.users} users, ${broadcasts} everyone broadcasts, each received and acked by all; per delivery, less the same setup idle`;
  const idleHow = `one replica holding ${idle.connected} idle connections for ${idleWindow.seconds.toFixed(0)} s (pings every 25 s, presence beats every 5 s), less the replica alone`;

  return {
    format: 'herald-capacity-constants/1',
    measured: measuredMeta,
    constants: {
      replica: {
        connectionsPerReplica: measured(
          MAX_CONNECTIONS_DEFAULT,
          'connections',
          `HERALD_MAX_CONNECTIONS's default; the idle run held ${idle.connected} on one replica`,
        ),
        baseMemoryBytes: measured(idle.rssEmptyBytes, 'bytes', 'RSS of a replica with no connection, after a full GC'),
        memoryPerConnectionBytes: measured(
          (idle.rssConnectedBytes - idle.rssEmptyBytes) / idle.connected,
          'bytes',
          `(RSS with ${idle.connected} connections − RSS with none) / connections, each after a full GC`,
        ),
        cpuMsPerReplicaSecond: measured(
          perSecond(empty, 'cpu.server'),
          'ms',
          'one replica with no connection: sweep, beats, stream checks',
        ),
        cpuMsPerConnectionSecond: measured(perConnectionSecond('cpu.server'), 'ms', idleHow),
        cpuMsPerConnect: measured(
          perConnect('cpu.server'),
          'ms',
          `${idle.connected} connects at 64 in flight per client process`,
        ),
        cpuMsPerUnicast: byRate('cpu.server', 'ms', `both replicas' CPU; ${unicastHow}`),
        cpuMsPerBroadcastDelivery: measured(perDelivery('cpu.server'), 'ms', `both replicas' CPU; ${broadcastHow}`),
        unicastPerSecondPerCore: {
          byReplicaRate: byRate('cpu.server', '', '').byReplicaRate.map((p) => ({
            ...p,
            value: p.value > 0 ? round(1000 / p.value) : 0,
          })),
          unit: 'notifications/s',
          how: 'what one core of replica CPU serves: 1000 ms / cpuMsPerUnicast (not used by the calculator)',
        },
        broadcastDeliveriesPerSecondPerCore: measured(
          1000 / perDelivery('cpu.server'),
          'deliveries/s',
          'what one core of replica CPU serves: 1000 ms / cpuMsPerBroadcastDelivery (not used by the calculator)',
        ),
      },
      postgres: {
        cpuMsPerReplicaSecond: measured(perSecond(empty, pgCpu), 'ms', `${pgCpuHow}; one replica with no connection`),
        cpuMsPerConnectionSecond: measured(perConnectionSecond(pgCpu), 'ms', `${pgCpuHow}; ${idleHow}`),
        cpuMsPerConnect: measured(perConnect(pgCpu), 'ms', `${pgCpuHow}; the users row and cursor of a first connect`),
        cpuMsPerUnicast: byRate(pgCpu, 'ms', `${pgCpuHow}; ${unicastHow}`),
        cpuMsPerBroadcastDelivery: measured(perDelivery(pgCpu), 'ms', `${pgCpuHow}; ${broadcastHow}`),
        rowsPerUnicast: byRate('pg.rows', 'rows', `inserted + updated + deleted (pg_stat_user_tables); ${unicastHow}`),
        rowsPerBroadcastDelivery: measured(perDelivery('pg.rows'), 'rows', `pg_stat_user_tables; ${broadcastHow}`),
        walBytesPerUnicast: byRate('pg.walBytes', 'bytes', `pg_current_wal_insert_lsn() difference; ${unicastHow}`),
        walBytesPerBroadcastDelivery: measured(
          perDelivery('pg.walBytes'),
          'bytes',
          `pg_current_wal_insert_lsn(); ${broadcastHow}`,
        ),
        walBytesPerReplicaSecond: measured(perSecond(empty, 'pg.walBytes'), 'bytes', 'one replica with no connection'),
        bytesPerUnicast: byRate(
          'pg.tableBytes',
          'bytes',
          `growth of every table with its indexes and TOAST; ${unicastHow}`,
        ),
        bytesPerBroadcastDelivery: measured(
          perDelivery('pg.tableBytes'),
          'bytes',
          `growth of every table with its indexes (the notification row, cursor versions, the ack journal); ${broadcastHow}`,
        ),
        bytesPerUser: measured(
          perConnect('pg.tableBytes'),
          'bytes',
          "a first connect's users row and everyone-stream cursor",
        ),
        commitsPerUnicast: byRate('pg.commits', 'commits', `xact_commit of the database; ${unicastHow}`),
      },
      redis: {
        commandsPerReplicaSecond: measured(
          perSecond(empty, 'redis.commands'),
          'commands',
          'INFO commandstats, one replica with no connection (BullMQ, beats)',
        ),
        commandsPerConnectionSecond: measured(
          perConnectionSecond('redis.commands'),
          'commands',
          `INFO commandstats; ${idleHow}`,
        ),
        commandsPerConnect: measured(perConnect('redis.commands'), 'commands', 'INFO commandstats: presence admission'),
        commandsPerUnicast: byRate(
          'redis.commands',
          'commands',
          `INFO commandstats (commands inside scripts counted); ${unicastHow}`,
        ),
        commandsPerBroadcast: measured(
          perBroadcast('redis.commands'),
          'commands',
          `INFO commandstats; ${broadcastHow}, per broadcast`,
        ),
        cpuMsPerReplicaSecond: measured(
          perSecond(empty, 'redis.cpuMs'),
          'ms',
          'INFO cpu, one replica with no connection',
        ),
        cpuMsPerConnectionSecond: measured(perConnectionSecond('redis.cpuMs'), 'ms', `INFO cpu; ${idleHow}`),
        cpuMsPerUnicast: byRate('redis.cpuMs', 'ms', `INFO cpu; ${unicastHow}`),
        cpuMsPerBroadcastPerReplica: measured(
          perBroadcast('redis.cpuMs') / broadcast.replicas,
          'ms',
          `INFO cpu; ${broadcastHow}, per broadcast and replica subscribed (all of it taken as the fan-out, which grows with replicas)`,
        ),
        memoryBytesPerConnection: measured(
          perConnect('redis.used_memory'),
          'bytes',
          'INFO used_memory growth per connection (presence)',
        ),
      },
      bus: {
        messagesOutPerUnicast: byRate(
          'bus.out',
          'messages',
          `herald_bus_messages_total{direction="out"}; ${unicastHow}`,
        ),
        messagesInPerUnicast: byRate('bus.in', 'messages', `herald_bus_messages_total{direction="in"}; ${unicastHow}`),
        messagesOutPerBroadcast: measured(
          perBroadcast('bus.out'),
          'messages',
          `herald_bus_messages_total{direction="out"}; ${broadcastHow}`,
        ),
        messagesInPerBroadcastPerReplica: measured(
          perBroadcast('bus.in') / broadcast.replicas,
          'messages',
          `herald_bus_messages_total{direction="in"} / replicas; ${broadcastHow}`,
        ),
      },
    },
    assumptions: ASSUMPTIONS,
    observed: {
      connectsPerSecond: round(idle.connectPerSecond),
      unicast: unicast.rates.map((r) => ({
        offeredPerSecond: r.rate,
        achievedPerSecond: round(r.achievedRate),
        publishErrors: r.publishErrors,
        p50Ms: r.p50,
        p99Ms: r.p99,
      })),
      broadcastDeliveriesPerSecond: round(broadcast.deliveriesPerSecond),
      perUnicast: breakdown(unicastRates[unicastRates.length - 1]!.unit),
      perBroadcastDelivery: breakdown(delivery),
      note: 'Everything shares one machine (replicas, PostgreSQL, Redis, load clients, publisher): rates here are bounded by that, not by one replica; the constants are CPU and bytes per unit of work.',
    },
  };
}

/** Rows by table and commands by name, per unit, for the docs. */
function breakdown(unit: Counters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(unit)) {
    if (!/^(pg\.(ins|upd|del)\.|redis\.cmd\.)/.test(key) || Math.abs(value) < 0.005) continue;
    out[key] = round(value, 3);
  }
  return out;
}

/** The planning choices the calculator applies to the measurements; each can be changed in the constants file. */
const ASSUMPTIONS: Record<string, Assumption> = {
  replicaCpuCores: {
    value: 0.7,
    unit: 'cores',
    source:
      'a replica is one Node.js event loop, so at most one core; plan at 70% of it so bursts and GC pauses do not queue',
  },
  replicaMemoryBytes: {
    value: 1024 ** 3,
    unit: 'bytes',
    source: 'the memory limit a replica is planned with (a container limit of 1 GiB)',
  },
  connectionsPerUser: {
    value: 1,
    unit: 'connections',
    source: 'each connected user holds one WebSocket (one device or tab)',
  },
  postgresCpuUtilization: {
    value: 0.7,
    unit: 'fraction',
    source: "plan the primary's cores at 70% busy, so checkpoints, vacuum and bursts have room",
  },
  postgresMaxCores: {
    value: 64,
    unit: 'cores',
    source:
      'the largest single PostgreSQL primary assumed available (a 64-vCPU machine); Herald has one primary and does not shard the record',
  },
  redisShardCpuUtilization: {
    value: 0.7,
    unit: 'fraction',
    source:
      'a Redis shard runs commands on one thread, so a shard is one core; plan at 70% of it (the commands/s a shard takes follow from the measured CPU per command)',
  },
};
