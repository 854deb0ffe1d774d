import { ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../../test/helpers/env';

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** One process's CPU time so far: `key` is its pid and start time, so a reused pid is another process. */
interface ProcCpu {
  key: string;
  ms: number;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat; undefined once it is gone. */
function procCpu(pid: number): ProcCpu | undefined {
  try {
    // Fields after "(comm) ": state is field 3, utime 14, stime 15, starttime 22.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { key: `${pid}@${fields[19]}`, ms: ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, in ms; 0 once it is gone. */
export function cpuMs(pid: number): number {
  return procCpu(pid)?.ms ?? 0;
}

/** Resident set size of a process, in bytes (VmRSS); 0 once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Children of a process (e.g. the Nginx workers of a master), from /proc. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The PostgreSQL backends serving one database (Herald's pool), from pg_stat_activity. */
export async function postgresBackendPids(database: string): Promise<number[]> {
  const client = new Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [database],
    );
    return rows.map((r) => r.pid);
  } finally {
    await client.end();
  }
}

/** The redis-server pid (`INFO server` process_id). Only readable when Redis runs on this machine. */
export async function redisServerPid(): Promise<number | undefined> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const match = /process_id:(\d+)/.exec(await redis.info('server'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

/** Runs `sample` every `everyMs`, one at a time, its errors ignored; stop() waits for the one under way. */
function repeatedly(everyMs: number, sample: () => Promise<void>): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(sample).catch(() => undefined);
  }, everyMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * CPU ms used by groups of processes between start() and stop(). The processes of a group may change
 * meanwhile (PostgreSQL backends open lazily and close after 30 s idle), so `list` is asked again every
 * `everyMs` and at stop(): a process first seen after start() started after it, so all its CPU time counts;
 * one that has gone counts up to its last sample (it sat idle before it closed).
 */
export class CpuMeter {
  /** CPU ms at start() of the processes seen then, by ProcCpu key. */
  private readonly atStart = new Map<string, number>();
  /** The latest sample of every process seen since start(), by ProcCpu key. */
  private readonly latest = new Map<string, { group: string; ms: number }>();
  private readonly groups = new Set<string>();
  private sampling = { stop: () => Promise.resolve() };

  constructor(
    private readonly list: () => Promise<Record<string, number[]>>,
    private readonly everyMs = 5000,
  ) {}

  async start(): Promise<this> {
    this.record(await this.list());
    for (const [key, { ms }] of this.latest) this.atStart.set(key, ms);
    this.sampling = repeatedly(this.everyMs, async () => this.record(await this.list()));
    return this;
  }

  /** ms of CPU per group since start(). */
  async stop(): Promise<Record<string, number>> {
    await this.sampling.stop();
    this.record(await this.list());
    const out: Record<string, number> = {};
    for (const group of this.groups) out[group] = 0;
    for (const [key, { group, ms }] of this.latest) out[group]! += Math.max(0, ms - (this.atStart.get(key) ?? 0));
    return out;
  }

  private record(groups: Record<string, number[]>): void {
    for (const [group, pids] of Object.entries(groups)) {
      this.groups.add(group);
      for (const pid of pids) {
        const sample = procCpu(pid);
        if (sample) this.latest.set(sample.key, { group, ms: sample.ms });
      }
    }
  }
}

/** A node script of the bench as a child process (a server), stdout/stderr passed through on error. */
export function spawnNode(script: string, args: string[], nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Pass errors through, not the inspector's banners.
  child.stderr?.on('data', (chunk: Buffer) => {
    const lines = chunk
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() && !/^(Debugger |For help, see)/.test(l));
    if (lines.length) process.stderr.write(`${lines.join('\n')}\n`);
  });
  return child;
}

/** A forked node script with an IPC channel (a load client). */
export function forkNode(script: string, args: string[] = []): ChildProcess {
  return fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Peak CPU of single processes, by group: every `everyMs` each process's CPU since the last sample, as a
 * percentage of one core; a group's peak is its busiest process in its busiest interval. `list` is asked
 * again at every sample (processes come and go during a storm: Nginx restarts, backends open).
 */
export class PeakCpuSampler {
  private readonly last = new Map<string, { ms: number; at: number }>();
  private readonly peaks = new Map<string, number>();
  private sampling = { stop: () => Promise.resolve() };

  constructor(
    private readonly list: () => Promise<Record<string, number[]>>,
    private readonly everyMs = 500,
  ) {}

  start(): this {
    this.sampling = repeatedly(this.everyMs, async () => this.sample(await this.list()));
    return this;
  }

  /** Peak % of one core per group since start(). */
  async stop(): Promise<Record<string, number>> {
    await this.sampling.stop();
    return Object.fromEntries(this.peaks);
  }

  private sample(groups: Record<string, number[]>): void {
    const now = performance.now();
    for (const [group, pids] of Object.entries(groups)) {
      if (!this.peaks.has(group)) this.peaks.set(group, 0);
      for (const pid of pids) {
        const cpu = procCpu(pid);
        if (!cpu) continue;
        const before = this.last.get(cpu.key);
        this.last.set(cpu.key, { ms: cpu.ms, at: now });
        if (!before || now - before.at < this.everyMs / 2) continue;
        const percent = (100 * (cpu.ms - before.ms)) / (now - before.at);
        this.peaks.set(group, Math.max(this.peaks.get(group)!, percent));
      }
    }
  }
}

/** Peak connections of one database in pg_stat_activity (all, and those not idle), sampled every `everyMs`. */
export class PgConnectionSampler {
  private readonly client = new Client({ connectionString: TEST_POSTGRES_URL });
  private sampling = { stop: () => Promise.resolve() };
  private peak = { open: 0, active: 0 };

  constructor(
    private readonly database: string,
    private readonly everyMs = 250,
  ) {}

  async start(): Promise<this> {
    await this.client.connect();
    this.sampling = repeatedly(this.everyMs, () => this.sample());
    return this;
  }

  async stop(): Promise<{ open: number; active: number }> {
    await this.sampling.stop();
    await this.client.end();
    return this.peak;
  }

  private async sample(): Promise<void> {
    const { rows } = await this.client.query<{ open: number; active: number }>(
      `SELECT count(*)::int AS open, (count(*) FILTER (WHERE state <> 'idle'))::int AS active
         FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [this.database],
    );
    const row = rows[0]!;
    this.peak = { open: Math.max(this.peak.open, row.open), active: Math.max(this.peak.active, row.active) };
  }
}
