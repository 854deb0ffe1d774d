import { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ask, closeChildren, untilChecked } from './clients';
import type { ClientKind, HeraldAckMode, ParentToStorm, StormResult, StormToParent, StormUser } from './ipc';
import { progress } from './log';
import { forkNode } from './proc';

type Tick = Extract<StormToParent, { type: 'tick' }>;

/** The 64 loopback source addresses of a storm's clients, 127.0.1.1 … 127.0.1.64 (Linux routes 127/8 to lo). */
export const SOURCE_ADDRESSES = Array.from({ length: 64 }, (_, i) => `127.0.1.${i + 1}`);

/** Storm client processes (bench/clients/storm-client.ts): users that reconnect on the SDK's schedule. */
export class StormPool {
  private readonly ticks = new Map<ChildProcess, Tick>();
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly children: ChildProcess[]) {
    for (const child of children) {
      child.on('message', (message: StormToParent) => {
        if (message.type !== 'tick') return;
        this.ticks.set(child, message);
        for (const listener of this.listeners) listener();
      });
    }
  }

  /** Forks ceil(users / perClient) clients, each user on address SOURCE_ADDRESSES[k % 64], and connects them all. */
  static async connect(
    label: string,
    options: {
      kind: ClientKind;
      url: string;
      ticketsUrl?: string;
      users: string[];
      perClient: number;
      heraldAcks: HeraldAckMode;
      timeoutMs: number;
    },
  ): Promise<StormPool> {
    const users: StormUser[] = options.users.map((id, k) => ({ id, address: SOURCE_ADDRESSES[k % 64]! }));
    const count = Math.max(1, Math.ceil(users.length / options.perClient));
    const script = join(__dirname, '..', 'clients', 'storm-client.js');
    const pool = new StormPool(Array.from({ length: count }, () => forkNode(script)));
    const started = Date.now();
    const connecting = Promise.all(
      pool.children.map((child, c) => {
        const message: ParentToStorm = {
          type: 'start',
          kind: options.kind,
          url: options.url,
          ...(options.ticketsUrl ? { ticketsUrl: options.ticketsUrl } : {}),
          users: users.filter((_, i) => i % count === c),
          concurrency: 64,
          heraldAcks: options.heraldAcks,
        };
        return ask(child, message, 'connected');
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        connecting,
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${label}: not all ${users.length} connected in ${options.timeoutMs} ms`)),
            options.timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      await pool.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    const ms = Date.now() - started;
    progress(`  ${label}: ${users.length} connected in ${ms} ms (${((users.length * 1000) / ms).toFixed(0)}/s)`);
    return pool;
  }

  /** Sums of the latest ticks: connected now, affected (ended after the mark), reconnected, ids received, acked. */
  get counts(): Omit<Tick, 'type'> {
    const sum = { connected: 0, affected: 0, reconnected: 0, received: 0, acked: 0 };
    for (const tick of this.ticks.values()) {
      sum.connected += tick.connected;
      sum.affected += tick.affected;
      sum.reconnected += tick.reconnected;
      sum.received += tick.received;
      sum.acked += tick.acked;
    }
    return sum;
  }

  /** From now on closes count, and times are taken from `at`. */
  mark(at: number): void {
    for (const child of this.children) child.send({ type: 'mark', at } satisfies ParentToStorm);
  }

  /** Users whose connection is not open now. */
  async offline(): Promise<string[]> {
    const answers = await Promise.all(
      this.children.map((child) =>
        ask<Extract<StormToParent, { type: 'offline' }>>(child, { type: 'offline' } satisfies ParentToStorm, 'offline'),
      ),
    );
    return answers.flatMap((a) => a.users);
  }

  /** Every client's result, merged. */
  async collect(): Promise<Omit<StormResult, 'type'>> {
    const answers = await Promise.all(
      this.children.map((child) => ask<StormResult>(child, { type: 'collect' } satisfies ParentToStorm, 'collected')),
    );
    const refused: Record<string, number> = {};
    for (const a of answers) for (const [how, n] of Object.entries(a.refused)) refused[how] = (refused[how] ?? 0) + n;
    return {
      reconnectMs: answers.flatMap((a) => a.reconnectMs),
      refused,
      dropsAfterReconnect: answers.reduce((s, a) => s + a.dropsAfterReconnect, 0),
      users: answers.flatMap((a) => a.users),
    };
  }

  pids(): number[] {
    return this.children.map((c) => c.pid!);
  }

  /** Resolves once `check` holds (evaluated on every tick), or rejects after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    return untilChecked(this.listeners, what, check, timeoutMs);
  }

  async close(): Promise<void> {
    await closeChildren(this.children);
  }
}
