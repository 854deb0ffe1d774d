import { waitFor } from '../../test/helpers/wait';
import { Args, DEFAULT_SERVERS, HERALD_ACK_MODES, ServerName } from './args';
import { ClientPool } from './clients';
import { progress } from './log';
import type { HeraldAckMode } from './ipc';
import { CpuMeter } from './proc';
import { writeResult } from './results';
import { AckCount, startTarget, Target, TargetOptions } from './targets';

/** What every scenario's JSON holds, whatever else it adds: the servers run and whether each completed. */
export interface ScenarioResult<Summary, Run> {
  servers: ServerName[];
  /** Per server: every connection made, every message received (Herald: and acked), every check passed. */
  complete: Record<string, boolean>;
  summary: Summary[];
  runs: Run[];
  notes: string[];
}

/** The fields every scenario's runs start with. */
export interface ScenarioRun {
  server: ServerName;
  rep: number;
}

/**
 * A scenario's command line, with the options they all take: --reps (3; 1 under --smoke), --servers (these
 * defaults) and --herald-acks (through).
 */
export function scenarioArgs(defaults: readonly ServerName[] = DEFAULT_SERVERS): {
  args: Args;
  reps: number;
  servers: ServerName[];
  heraldAcks: HeraldAckMode;
} {
  const args = new Args();
  return {
    args,
    reps: args.num('reps', 3, 1),
    servers: args.servers(defaults),
    heraldAcks: args.choice('herald-acks', HERALD_ACK_MODES, 'through'),
  };
}

/** Starts a server, runs `body`, always stops it. */
export async function withTarget<T>(
  name: ServerName,
  options: TargetOptions,
  body: (target: Target) => Promise<T>,
): Promise<T> {
  progress(
    `starting ${name} (${options.processes} process${options.processes > 1 ? 'es' : ''}${options.nginx ? ', behind nginx' : ''})`,
  );
  const target = await startTarget(name, options);
  try {
    return await body(target);
  } finally {
    await target.stop();
  }
}

/** Connects every user to the target through load clients, fails unless all connected, runs `body`, always closes them. */
export async function withClients<T>(
  label: string,
  target: Target,
  users: string[],
  options: { perClient: number; heraldAcks: HeraldAckMode },
  body: (pool: ClientPool) => Promise<T>,
): Promise<T> {
  const { pool, summary } = await ClientPool.connect(label, target.clientKind, target.clientUrls, users, options);
  try {
    if (summary.connected !== users.length)
      throw new Error(`${label}: only ${summary.connected}/${users.length} connected: ${summary.errors.join('; ')}`);
    return await body(pool);
  } finally {
    await pool.close();
  }
}

/** A result note on how Herald's clients acked in this run. */
export function heraldAcksNote(mode: HeraldAckMode): string {
  return mode === 'through'
    ? "Herald's clients ack as the SDK does by default (--herald-acks through): coalesced over 5 ms, one `ack … through` per flush of two or more when the welcome lists ackThrough, else by id."
    : "Herald's clients ack by id, as before ackThrough (--herald-acks ids): the acks of one read in one `ack` frame or `acks` frames.";
}

/**
 * Deliveries acked so far: Herald's counted by its clients from the answers (ok, duplicate, or a through's
 * settled count), raw-ws-acks's counted by the server as it parses them; null for a server without acks.
 */
export async function ackedSoFar(target: Target, pool: ClientPool): Promise<AckCount | null> {
  if (target.serverAcks) return target.serverAcks();
  return target.clientKind === 'herald' ? { count: pool.acksOk, lastAt: pool.lastAckAt } : null;
}

/** Waits until `n` deliveries more than `before` are acked (see ackedSoFar); the count then. */
export async function untilAcked(
  what: string,
  target: Target,
  pool: ClientPool,
  before: AckCount,
  n: number,
  timeoutMs: number,
): Promise<AckCount> {
  if (target.serverAcks) {
    const serverAcks = target.serverAcks.bind(target);
    return waitFor(
      what,
      async () => {
        const now = await serverAcks();
        return now.count - before.count >= n ? now : undefined;
      },
      timeoutMs,
    );
  }
  await pool.until(what, () => pool.acksOk - before.count >= n, timeoutMs);
  return { count: pool.acksOk, lastAt: pool.lastAckAt };
}

/**
 * A durable count read from PostgreSQL once it reaches `expected`, or as it stands after 10 s: Herald's
 * clients count a quiet ack when they send it, so the last ack batch may still be on its way when they are
 * done.
 */
export async function durableCount(read: () => Promise<number>, expected: number): Promise<number> {
  let count = await read();
  for (let tries = 1; tries < 20 && count !== expected; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    count = await read();
  }
  return count;
}

/**
 * Starts measuring the CPU of the target's server processes and of its support processes (these groups; all
 * by default). The support processes are listed again while it runs and at stop(): PostgreSQL backends that
 * a pool opens later are counted too.
 */
export async function startCpuMeter(target: Target, groups?: string[]): Promise<CpuMeter> {
  const list = async () => {
    const support = await target.supportPids();
    const pids: Record<string, number[]> = { server: target.serverPids() };
    for (const group of groups ?? Object.keys(support)) pids[group] = support[group] ?? [];
    return pids;
  };
  return new CpuMeter(list).start();
}

/** Sums CPU ms per group and divides by a count. */
export function perUnit(cpu: Record<string, number>, count: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [group, ms] of Object.entries(cpu)) out[group] = ms / Math.max(1, count);
  return out;
}

/** One summary row per key (e.g. `{ server, size }`), in order, from the runs whose fields match every field of the key. */
export function summarize<Run, Key extends Partial<Run>, Row>(
  runs: Run[],
  keys: Key[],
  row: (mine: Run[], key: Key) => Row,
): Row[] {
  return keys.map((key) =>
    row(
      runs.filter((r) => Object.entries(key).every(([field, value]) => r[field as keyof Run] === value)),
      key,
    ),
  );
}

/**
 * Writes a scenario's result (dist/bench-results/<scenario>.json) with, per server, whether it completed:
 * `complete` of that server's runs.
 */
export function writeScenarioResult<Summary, Run extends { server: ServerName }>(
  scenario: string,
  smoke: boolean,
  parameters: Record<string, unknown>,
  parts: Omit<ScenarioResult<Summary, Run>, 'complete'> & { complete: (mine: Run[], server: ServerName) => boolean },
): void {
  const complete: Record<string, boolean> = {};
  for (const server of parts.servers) {
    complete[server] = parts.complete(
      parts.runs.filter((r) => r.server === server),
      server,
    );
  }
  const result: ScenarioResult<Summary, Run> = {
    servers: parts.servers,
    complete,
    summary: parts.summary,
    runs: parts.runs,
    notes: parts.notes,
  };
  writeResult(scenario, smoke, parameters, result);
}
