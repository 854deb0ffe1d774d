import { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Emitter } from '@socket.io/redis-emitter';
import { Redis } from 'ioredis';
import { TestCluster } from '../../test/helpers/cluster';
import { Edge } from '../../test/helpers/edge';
import { PrivateRedisCluster } from '../../test/helpers/private-redis-cluster';
import { TEST_REDIS_URL } from '../../test/helpers/env';
import { deleteRedisPrefix, testRedisPrefix } from '../../test/helpers/redis';
import { freePort, Replica, TEST_API_KEY } from '../../test/helpers/replica';
import { waitFor } from '../../test/helpers/wait';
import type { ServerName } from './args';
import { BaselineEdge, EdgeControl, EdgeSettings } from './baseline-edge';
import { postJson } from './http';
import { progress } from './log';
import { collectGarbage } from './inspector';
import type { BenchPayload, ClientKind } from './ipc';
import { childPids, postgresBackendPids, redisServerPid, spawnNode, stopProcess } from './proc';

export interface TargetOptions {
  /** Server processes: Herald replicas, raw ws processes or Socket.IO processes. */
  processes: number;
  /** Put a private Nginx in front (clients and HTTP publishes go through it). */
  nginx?: boolean;
  /** How that Nginx runs (default: per-address limits lifted, one worker per core). */
  edge?: EdgeSettings;
  /** Start each server process with --inspect on loopback, so gc() can run a full collection. */
  inspect?: boolean;
  /** Extra Herald settings. */
  heraldEnv?: Record<string, string>;
}

/** One server under test, started with its processes, ready for load clients and publishes. */
export interface Target {
  name: ServerName;
  clientKind: ClientKind;
  /** Where load clients connect, round-robin. */
  clientUrls: string[];
  /** HTTP bases for publishes (Herald: /v1/notifications; raw: /publish). Empty for Socket.IO. */
  httpUrls: string[];
  /** The server processes still running. */
  serverPids(): number[];
  /** SIGKILLs server process `index` (no shutdown hooks); resolves once it is gone. */
  kill(index: number): Promise<void>;
  /** The Nginx in front, when there is one. */
  edge?: EdgeControl;
  /** Other processes whose CPU a message costs: PostgreSQL backends, redis-server, Nginx workers. */
  supportPids(): Promise<Record<string, number[]>>;
  publish(userId: string, payload: BenchPayload): Promise<void>;
  broadcast(payload: BenchPayload): Promise<{ recipients?: number }>;
  /** Herald only: one notification to these users, published straight to replica `index` (not through Nginx); its id. */
  publishDirect?(index: number, users: string[], payload: BenchPayload): Promise<string>;
  gc(): Promise<void>;
  /**
   * raw-ws-acks only: ack frames its processes have parsed so far, and when the last one came (the server's
   * Date.now()). Herald's acks are counted by its clients, from the answers.
   */
  serverAcks?(): Promise<AckCount>;
  /** Herald only: each replica's own HTTP base (its /metrics), whether or not Nginx is in front. */
  replicaUrls?: string[];
  /** Herald only: its private database name. */
  database?: string;
  query?<T>(sql: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

export interface AckCount {
  count: number;
  lastAt: number;
}

/** Herald settings for load: limits raised, default (not test) timings, acks given a long time. */
export const HERALD_BENCH_ENV: Record<string, string> = {
  LOG_LEVEL: 'warn',
  // The bench's Nginx, whose X-Request-Start the replicas then believe (HERALD_MAX_QUEUE_AGE_MS), as in the stack.
  HERALD_TRUSTED_PROXIES: '127.0.0.1',
  HERALD_MAX_CONNECTIONS: '30000',
  HERALD_CLIENT_FRAMES_PER_SECOND: '100000',
  HERALD_CLIENT_FRAMES_BURST: '100000',
  HERALD_MAX_CONNECTIONS_PER_USER: '20',
  HERALD_ACK_TIMEOUT_MS: '60000',
  HERALD_REDELIVERY_BACKOFF_MS: '1000',
  HERALD_REDELIVERY_MAX_BACKOFF_MS: '60000',
  HERALD_REDELIVERY_MAX_ATTEMPTS: '5',
  HERALD_SWEEP_INTERVAL_MS: '5000',
  HERALD_PRESENCE_HEARTBEAT_MS: '5000',
  HERALD_HEARTBEAT_MS: '25000',
  HERALD_SHUTDOWN_GRACE_MS: '3000',
};

/** Nginx's per-address limits lifted: all load comes from 127.0.0.1 (limit_conn must stay below 65536). */
const EDGE_LIMITS = { connectionsPerIp: 60000, handshakesPerSecond: 100000, handshakeBurst: 100000 };

/** Herald's edge for these settings: the production template, its limits lifted unless kept at the defaults. */
function heraldEdge(ports: number[], settings: EdgeSettings = {}): Promise<Edge> {
  const { defaultLimits, ...workers } = settings;
  return Edge.start(ports, { ...(defaultLimits ? {} : EDGE_LIMITS), ...workers });
}

async function redisPids(): Promise<number[]> {
  const pid = await redisServerPid();
  return pid ? [pid] : [];
}

/**
 * Settings of this run for Herald's replicas: `HERALD_BENCH_SET_<NAME>=<value>` in the bench's environment
 * sets `<NAME>` in theirs (e.g. `HERALD_BENCH_SET_HERALD_MAX_QUEUE_AGE_MS=0`), over the bench's own.
 */
function benchSettings(): Record<string, string> {
  const prefix = 'HERALD_BENCH_SET_';
  return Object.fromEntries(
    Object.entries(process.env)
      .filter(([name, value]) => name.startsWith(prefix) && value !== undefined)
      .map(([name, value]) => [name.slice(prefix.length), value!]),
  );
}

export async function startTarget(name: ServerName, options: TargetOptions): Promise<Target> {
  switch (name) {
    case 'herald':
      return startHerald(options);
    case 'raw-ws':
      return startRaw(options, false);
    case 'raw-ws-acks':
      return startRaw(options, true);
    case 'socket.io':
      return startSocketIo(options);
  }
}

/**
 * HERALD_BENCH_REDIS_CLUSTER=1: Herald's replicas run on a private Redis Cluster (3 masters + 3 replicas,
 * started for the run and destroyed after) instead of the shared Redis; its six nodes count as `redis`.
 */
async function benchRedisCluster(): Promise<PrivateRedisCluster | undefined> {
  if (process.env.HERALD_BENCH_REDIS_CLUSTER !== '1') return undefined;
  progress('starting a private Redis Cluster (3 masters + 3 replicas) for Herald');
  return PrivateRedisCluster.create();
}

async function startHerald(options: TargetOptions): Promise<Target> {
  const redisCluster = await benchRedisCluster();
  const inspectPorts: number[] = [];
  // HERALD_BENCH_NODE_OPTIONS reaches the replicas as NODE_OPTIONS, e.g. "--require /tmp/profile.js" for a
  // script that starts the inspector's profiler (Node refuses --cpu-prof in NODE_OPTIONS).
  const nodeOptions = process.env.HERALD_BENCH_NODE_OPTIONS;
  const env = {
    ...HERALD_BENCH_ENV,
    ...options.heraldEnv,
    ...benchSettings(),
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    ...(redisCluster ? { REDIS_URL: '', REDIS_CLUSTER_NODES: redisCluster.nodes } : {}),
  };
  let cluster: TestCluster;
  if (options.inspect) {
    // One NODE_OPTIONS per replica: start them one at a time with their own port.
    cluster = await TestCluster.start('bench', 0, env);
    for (let i = 1; i <= options.processes; i++) {
      const port = await freePort();
      inspectPorts.push(port);
      const replica = await Replica.create(`bench-r${i}`, {
        databaseUrl: cluster.db.url,
        redisPrefix: cluster.redisPrefix,
        ...env,
        NODE_OPTIONS: `--inspect=127.0.0.1:${port}${nodeOptions ? ` ${nodeOptions}` : ''}`,
      });
      cluster.replicas.push(replica);
      await replica.start();
    }
  } else {
    cluster = await TestCluster.start('bench', options.processes, env);
  }
  const edge = options.nginx
    ? await heraldEdge(
        cluster.replicas.map((r) => r.port),
        options.edge,
      )
    : undefined;
  const httpUrls = edge ? [edge.http] : cluster.replicas.map((r) => r.http);
  const edgeControl: EdgeControl | undefined = edge && {
    stop: () => edge.stop(),
    restart: () => edge.restart(),
    workerPids: () => {
      try {
        return childPids(edge.masterPid());
      } catch {
        return []; // stopped: no pid file, no workers
      }
    },
  };
  let next = 0;
  const post = async (body: unknown, base = httpUrls[next++ % httpUrls.length]!) => {
    const answer = await postJson(`${base}/v1/notifications`, body, {
      authorization: `Bearer ${TEST_API_KEY}`,
    });
    if (answer.status !== 202) throw new Error(`herald publish answered ${answer.status}: ${answer.body}`);
    return JSON.parse(answer.body) as { id: string; recipients: number };
  };
  return {
    name: 'herald',
    clientKind: 'herald',
    clientUrls: edge ? [edge.ws] : cluster.replicas.map((r) => r.ws),
    httpUrls,
    serverPids: () => cluster.replicas.flatMap((r) => (r.pid === undefined ? [] : [r.pid])),
    kill: (index) => cluster.replicas[index]!.kill(),
    ...(edgeControl ? { edge: edgeControl } : {}),
    supportPids: async () => ({
      postgres: await postgresBackendPids(cluster.db.name),
      redis: redisCluster ? await redisCluster.pids() : await redisPids(),
      nginx: edgeControl?.workerPids() ?? [],
    }),
    publish: async (userId, payload) => {
      await post({ to: { users: [userId] }, event: 'bench', payload });
    },
    broadcast: async (payload) => {
      const answer = await post({ to: { all: true }, event: 'bench', payload });
      return { recipients: answer.recipients };
    },
    publishDirect: async (index, users, payload) =>
      (await post({ to: { users }, event: 'bench', payload }, cluster.replicas[index]!.http)).id,
    gc: async () => {
      for (const port of inspectPorts) await collectGarbage(port);
    },
    replicaUrls: cluster.replicas.map((r) => r.http),
    database: cluster.db.name,
    query: (sql, params) => cluster.db.query(sql, params),
    stop: async () => {
      await edge?.stop();
      await cluster.stop();
      await redisCluster?.destroy();
    },
  };
}

/** Spawns `processes` copies of a baseline server script and waits for their HTTP port. */
async function startBaselineProcesses(
  script: string,
  prefix: string,
  options: TargetOptions,
  extraArgs: string[] = [],
): Promise<{ ports: number[]; children: ChildProcess[]; inspectPorts: number[] }> {
  const ports: number[] = [];
  const inspectPorts: number[] = [];
  const children: ChildProcess[] = [];
  for (let i = 0; i < options.processes; i++) {
    const port = await freePort();
    const nodeArgs: string[] = [];
    if (options.inspect) {
      const inspectPort = await freePort();
      inspectPorts.push(inspectPort);
      nodeArgs.push(`--inspect=127.0.0.1:${inspectPort}`);
    }
    ports.push(port);
    children.push(
      spawnNode(
        join(__dirname, '..', 'servers', script),
        [String(port), TEST_REDIS_URL, prefix, ...extraArgs],
        nodeArgs,
      ),
    );
  }
  for (const [i, port] of ports.entries()) {
    await waitFor(`${script} on :${port}`, async () => {
      if (children[i]!.exitCode !== null) throw new Error(`${script} exited with ${children[i]!.exitCode}`);
      return (await fetch(`http://127.0.0.1:${port}/`)).ok;
    });
  }
  return { ports, children, inspectPorts };
}

/** What the two baselines' targets say about their processes and their Nginx. */
function baselineProcesses(
  children: ChildProcess[],
  nginx: BaselineEdge | undefined,
): Pick<Target, 'serverPids' | 'kill' | 'edge' | 'supportPids'> {
  return {
    serverPids: () => children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => c.pid!),
    kill: async (index) => {
      const child = children[index]!;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    ...(nginx ? { edge: nginx } : {}),
    supportPids: async () => ({ postgres: [], redis: await redisPids(), nginx: nginx?.workerPids() ?? [] }),
  };
}

/** The raw ws baseline; with `acks`, raw-ws-acks: frames carry an id and clients ack each one. */
async function startRaw(options: TargetOptions, acks: boolean): Promise<Target> {
  const prefix = testRedisPrefix('bench-raw');
  const { ports, children, inspectPorts } = await startBaselineProcesses(
    'raw-ws.js',
    prefix,
    options,
    acks ? ['acks'] : [],
  );
  const nginx = options.nginx ? await BaselineEdge.start(ports, options.edge) : undefined;
  const httpUrls = nginx ? [`http://127.0.0.1:${nginx.port}`] : ports.map((p) => `http://127.0.0.1:${p}`);
  let next = 0;
  const post = async (path: string, body: unknown) => {
    const answer = await postJson(`${httpUrls[next++ % httpUrls.length]!}${path}`, body);
    if (answer.status !== 202) throw new Error(`raw publish answered ${answer.status}`);
  };
  // Straight to each process, not through Nginx: every process counts its own clients' acks.
  const serverAcks = async (): Promise<AckCount> => {
    const counts = await Promise.all(
      ports.map(
        async (p) => (await (await fetch(`http://127.0.0.1:${p}/`)).json()) as { acks: number; lastAckAt: number },
      ),
    );
    return {
      count: counts.reduce((sum, c) => sum + c.acks, 0),
      lastAt: Math.max(0, ...counts.map((c) => c.lastAckAt)),
    };
  };
  return {
    name: acks ? 'raw-ws-acks' : 'raw-ws',
    clientKind: acks ? 'raw-acks' : 'raw',
    clientUrls: httpUrls.map((u) => `${u.replace('http:', 'ws:')}/ws`),
    httpUrls,
    ...baselineProcesses(children, nginx),
    publish: (userId, payload) => post('/publish', { userId, payload }),
    broadcast: async (payload) => {
      await post('/broadcast', { payload });
      return {};
    },
    ...(acks ? { serverAcks } : {}),
    gc: async () => {
      for (const port of inspectPorts) await collectGarbage(port);
    },
    stop: async () => {
      await nginx?.stop();
      await Promise.all(children.map((c) => stopProcess(c)));
      await deleteRedisPrefix(prefix);
    },
  };
}

async function startSocketIo(options: TargetOptions): Promise<Target> {
  const prefix = testRedisPrefix('bench-sio');
  const { ports, children, inspectPorts } = await startBaselineProcesses('socketio.js', prefix, options);
  const nginx = options.nginx ? await BaselineEdge.start(ports, options.edge) : undefined;
  const redis = new Redis(TEST_REDIS_URL);
  const emitter = new Emitter(redis, { key: prefix });
  return {
    name: 'socket.io',
    clientKind: 'socketio',
    clientUrls: nginx ? [`http://127.0.0.1:${nginx.port}`] : ports.map((p) => `http://127.0.0.1:${p}`),
    httpUrls: [],
    ...baselineProcesses(children, nginx),
    publish: async (userId, payload) => {
      emitter.to(`user:${userId}`).emit('notification', payload);
    },
    broadcast: async (payload) => {
      emitter.emit('notification', payload);
      return {};
    },
    gc: async () => {
      for (const port of inspectPorts) await collectGarbage(port);
    },
    stop: async () => {
      redis.disconnect();
      await nginx?.stop();
      await Promise.all(children.map((c) => stopProcess(c)));
      await deleteRedisPrefix(prefix);
    },
  };
}

/** ~150 B of JSON per message: index, send time and padding. */
export function benchPayload(i: number, size = 150): BenchPayload {
  const base = JSON.stringify({ i, t: Date.now(), pad: '' }).length;
  return { i, t: Date.now(), pad: 'x'.repeat(Math.max(0, size - base)) };
}
