/**
 * Unicast latency and cost: users split over two server processes, notifications
 * published over HTTP to random users at a fixed rate, publish→receive measured
 * in the same clock. Herald (durable: rows written, every notification acked)
 * runs against a baseline that persists nothing (bench/baseline-server.ts), in
 * the same invocation, so the ratio holds on a noisy machine.
 *
 *   npm run bench -- [--users 400] [--messages 2000] [--rate 400] [--reps 3]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { userToken } from '../test/helpers/api';
import { TestCluster } from '../test/helpers/cluster';
import { repoRoot } from '../test/helpers/paths';
import { deleteRedisPrefix, testRedisPrefix } from '../test/helpers/redis';
import { freePort, TEST_API_KEY } from '../test/helpers/replica';
import { waitFor } from '../test/helpers/wait';
import { median, percentile, printTable } from './stats';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const USERS = arg('users', 400);
const MESSAGES = arg('messages', 2000);
const RATE = arg('rate', 400);
const REPS = arg('reps', 3);

interface Target {
  name: string;
  pids(): number[];
  connect(index: number, userId: string, onFrame: (socket: WebSocket, raw: string) => void): Promise<WebSocket>;
  publish(index: number, userId: string, payload: { t: number; i: number }): Promise<void>;
}

interface Run {
  latencies: number[];
  throughput: number;
  cpuMsPerMessage: number;
}

/** CPU time (user + system) of a process so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function runOnce(target: Target): Promise<Run> {
  const received = new Map<number, number>();
  const sockets: WebSocket[] = [];
  for (let u = 0; u < USERS; u++) {
    sockets.push(
      await target.connect(u, `bench-user-${u}`, (socket, raw) => {
        const frame = JSON.parse(raw) as { type: string; id?: string; payload?: { t: number; i: number } };
        if (frame.type !== 'notification' || !frame.payload) return;
        if (!received.has(frame.payload.i)) received.set(frame.payload.i, Date.now() - frame.payload.t);
        if (frame.id) socket.send(JSON.stringify({ type: 'ack', id: frame.id }));
      }),
    );
  }
  const cpuBefore = target.pids().map(cpuMs);
  const started = Date.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < MESSAGES; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const user = Math.floor(Math.random() * USERS);
    const work = target.publish(i, `bench-user-${user}`, { t: Date.now(), i });
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
    if (inFlight.size >= 256) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await waitFor(`${target.name}: all ${MESSAGES} notifications received`, () => received.size >= MESSAGES, 60_000, 20);
  const elapsed = Date.now() - started;
  // Let acks land before reading CPU, so their cost is counted.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const cpuAfter = target.pids().map(cpuMs);
  for (const socket of sockets) socket.terminate();
  const cpu = cpuAfter.reduce((sum, v, i) => sum + v - cpuBefore[i]!, 0);
  return {
    latencies: [...received.values()].sort((a, b) => a - b),
    throughput: (MESSAGES * 1000) / elapsed,
    cpuMsPerMessage: cpu / MESSAGES,
  };
}

function openSocket(url: string, onFrame: (socket: WebSocket, raw: string) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.on('message', (data: WebSocket.RawData) => {
      const raw = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      if (raw.includes('"welcome"')) resolve(socket);
      else onFrame(socket, raw);
    });
    socket.once('error', reject);
  });
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  if (response.status !== 202) throw new Error(`publish answered ${response.status}`);
}

async function startBaseline(): Promise<{ target: Target; stop: () => Promise<void> }> {
  const prefix = testRedisPrefix('baseline');
  const ports = [await freePort(), await freePort()];
  const children: ChildProcess[] = ports.map((port) =>
    spawn(process.execPath, [join(__dirname, 'baseline-server.js'), String(port), 'redis://127.0.0.1:6379', prefix], {
      stdio: 'inherit',
    }),
  );
  for (const port of ports) {
    await waitFor(`baseline on :${port}`, async () => {
      await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{"userId":"probe","payload":null}' });
      return true;
    });
  }
  return {
    target: {
      name: 'baseline ws+redis',
      pids: () => children.map((c) => c.pid!),
      connect: (i, userId, onFrame) => openSocket(`ws://127.0.0.1:${ports[i % 2]}/ws?user=${userId}`, onFrame),
      publish: (i, userId, payload) => post(`http://127.0.0.1:${ports[i % 2]}/publish`, { userId, payload }),
    },
    stop: async () => {
      for (const child of children) child.kill('SIGTERM');
      await deleteRedisPrefix(prefix);
    },
  };
}

async function startHerald(): Promise<{ target: Target; stop: () => Promise<void> }> {
  const cluster = await TestCluster.start('bench', 2, {
    LOG_LEVEL: 'warn',
    HERALD_ACK_TIMEOUT_MS: '10000',
    HERALD_REDELIVERY_BACKOFF_MS: '1000',
    HERALD_REDELIVERY_MAX_BACKOFF_MS: '60000',
    HERALD_REDELIVERY_MAX_ATTEMPTS: '5',
    HERALD_SWEEP_INTERVAL_MS: '5000',
    HERALD_PRESENCE_HEARTBEAT_MS: '5000',
    HERALD_HEARTBEAT_MS: '25000',
  });
  const [a, b] = cluster.replicas;
  const replicas = [a!, b!];
  return {
    target: {
      name: 'herald (durable, acked)',
      pids: () => replicas.map((r) => r.pid!),
      connect: (i, userId, onFrame) => openSocket(`${replicas[i % 2]!.ws}?token=${userToken(userId)}`, onFrame),
      publish: (i, userId, payload) =>
        post(
          `${replicas[i % 2]!.http}/v1/notifications`,
          { to: { users: [userId] }, event: 'bench', payload },
          { authorization: `Bearer ${TEST_API_KEY}` },
        ),
    },
    stop: () => cluster.stop(),
  };
}

async function main(): Promise<void> {
  process.stdout.write(
    `unicast: ${USERS} users over 2 processes, ${MESSAGES} publishes at ${RATE}/s to random users, ${REPS} repetitions\n`,
  );
  const results: Record<string, Run[]> = {};
  for (const start of [startBaseline, startHerald]) {
    const { target, stop } = await start();
    try {
      results[target.name] = [];
      for (let rep = 0; rep < REPS; rep++) {
        const run = await runOnce(target);
        results[target.name]!.push(run);
        process.stdout.write(
          `  ${target.name} rep ${rep + 1}: p50 ${percentile(run.latencies, 50)} ms, p99 ${percentile(run.latencies, 99)} ms\n`,
        );
      }
    } finally {
      await stop();
    }
  }
  const summary = Object.entries(results).map(([name, runs]) => {
    const pick = (f: (r: Run) => number) => {
      const values = runs.map(f);
      return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
    };
    return {
      name,
      p50: pick((r) => percentile(r.latencies, 50)),
      p95: pick((r) => percentile(r.latencies, 95)),
      p99: pick((r) => percentile(r.latencies, 99)),
      max: pick((r) => r.latencies[r.latencies.length - 1]!),
      throughput: pick((r) => r.throughput),
      cpu: pick((r) => r.cpuMsPerMessage),
    };
  });
  const range = (v: { median: number; min: number; max: number }) =>
    `${v.median.toFixed(1)} (${v.min.toFixed(1)}–${v.max.toFixed(1)})`;
  printTable(
    'publish → receive latency (ms) and server CPU per message: median (min–max) over repetitions',
    ['target', 'p50', 'p95', 'p99', 'max', 'msg/s', 'server CPU ms/msg'],
    summary.map((s) => [
      s.name,
      range(s.p50),
      range(s.p95),
      range(s.p99),
      range(s.max),
      range(s.throughput),
      range(s.cpu),
    ]),
  );
  const [base, herald] = summary;
  if (base && herald) {
    printTable(
      'ratio herald / baseline (medians)',
      ['p50', 'p99', 'server CPU'],
      [[herald.p50.median / base.p50.median, herald.p99.median / base.p99.median, herald.cpu.median / base.cpu.median]],
    );
  }
  process.stdout.write(
    '\nServer CPU counts the two server processes only; Herald also spends PostgreSQL and Redis time, the baseline Redis.\n',
  );
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `unicast-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ users: USERS, messages: MESSAGES, rate: RATE, reps: REPS, summary }, null, 2));
  process.stdout.write(`results: ${file}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
