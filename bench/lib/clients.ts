import { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { ClientKind, ClientToParent, HeraldAckMode, ParentToClient } from './ipc';
import { progress } from './log';
import { forkNode, stopProcess } from './proc';

export interface MessageState {
  count: number;
  first: number;
  last: number;
  t: number;
}

export interface ConnectSummary {
  startedAt: number;
  connected: number;
  failed: number;
  ms: number;
  perSecond: number;
  errors: string[];
}

/** Load-client processes (bench/clients/load-client.ts), their connections and what they received. */
export class ClientPool {
  readonly messages = new Map<number, MessageState>();
  private readonly acks = new Map<ChildProcess, { ok: number; other: number; lastAt: number; closed: number }>();
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly children: ChildProcess[]) {
    for (const child of children) {
      this.acks.set(child, { ok: 0, other: 0, lastAt: 0, closed: 0 });
      child.on('message', (message: ClientToParent) => {
        if (message.type !== 'report') return;
        for (const [i, count, first, last, t] of message.recv) {
          const state = this.messages.get(i);
          if (!state) this.messages.set(i, { count, first, last, t });
          else {
            state.count += count;
            state.first = Math.min(state.first, first);
            state.last = Math.max(state.last, last);
          }
        }
        this.acks.set(child, {
          ok: message.acksOk,
          other: message.acksOther,
          lastAt: message.lastAckAt,
          closed: message.closed,
        });
        for (const listener of this.listeners) listener();
      });
    }
  }

  /** Forks ceil(users / perClient) clients and opens every connection; resolves when all have tried. */
  static async connect(
    label: string,
    kind: ClientKind,
    urls: string[],
    users: string[],
    options: { perClient?: number; concurrency?: number; heraldAcks?: HeraldAckMode } = {},
  ): Promise<{ pool: ClientPool; summary: ConnectSummary }> {
    const perClient = options.perClient ?? 2500;
    const count = Math.max(1, Math.ceil(users.length / perClient));
    const script = join(__dirname, '..', 'clients', 'load-client.js');
    const children = Array.from({ length: count }, () => forkNode(script));
    const pool = new ClientPool(children);
    const state = children.map(() => ({ connected: 0, failed: 0 }));
    const ticker = setInterval(() => {
      const done = state.reduce((s, c) => s + c.connected, 0);
      const failed = state.reduce((s, c) => s + c.failed, 0);
      progress(`  ${label}: ${done}/${users.length} connected${failed ? `, ${failed} failed` : ''}`);
    }, 2000);
    try {
      const results = await Promise.all(
        children.map(
          (child, c) =>
            new Promise<Extract<ClientToParent, { type: 'connected' }>>((resolve, reject) => {
              child.on('message', (message: ClientToParent) => {
                if (message.type === 'connecting') state[c] = message;
                if (message.type === 'connected') resolve(message);
              });
              child.once('exit', (code) => reject(new Error(`load client exited with ${code} while connecting`)));
              const slice = users.filter((_, i) => i % count === c);
              const start: ParentToClient = {
                type: 'start',
                kind,
                urls,
                users: slice,
                concurrency: options.concurrency ?? 64,
                heraldAcks: options.heraldAcks ?? 'through',
              };
              child.send(start);
            }),
        ),
      );
      const startedAt = Math.min(...results.map((r) => r.startedAt));
      const doneAt = Math.max(...results.map((r) => r.doneAt));
      const connected = results.reduce((s, r) => s + r.connected, 0);
      const summary: ConnectSummary = {
        startedAt,
        connected,
        failed: results.reduce((s, r) => s + r.failed, 0),
        ms: doneAt - startedAt,
        perSecond: (connected * 1000) / Math.max(1, doneAt - startedAt),
        errors: results.flatMap((r) => r.errors).slice(0, 5),
      };
      return { pool, summary };
    } catch (error) {
      await pool.close();
      throw error;
    } finally {
      clearInterval(ticker);
    }
  }

  pids(): number[] {
    return this.children.map((c) => c.pid!);
  }

  get acksOk(): number {
    return [...this.acks.values()].reduce((s, a) => s + a.ok, 0);
  }

  get acksOther(): number {
    return [...this.acks.values()].reduce((s, a) => s + a.other, 0);
  }

  get lastAckAt(): number {
    return Math.max(0, ...[...this.acks.values()].map((a) => a.lastAt));
  }

  get closed(): number {
    return [...this.acks.values()].reduce((s, a) => s + a.closed, 0);
  }

  /** Deliveries received so far, over all indexes. */
  delivered(): number {
    let total = 0;
    for (const state of this.messages.values()) total += state.count;
    return total;
  }

  /** Asks every client for its latest counts and waits for them. */
  async flush(): Promise<void> {
    await Promise.all(this.children.map((child) => ask(child, { type: 'flush' } satisfies ParentToClient, 'flushed')));
  }

  /** Resolves once `check` holds (evaluated on every report), or rejects after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    return untilChecked(this.listeners, what, check, timeoutMs);
  }

  async close(): Promise<void> {
    await closeChildren(this.children);
  }
}

/** Sends `message` to a child process and resolves with its first answer of type `answer`. */
export function ask<T extends { type: string }>(child: ChildProcess, message: object, answer: T['type']): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (reply: T) => {
      if (reply.type !== answer) return;
      child.off('message', onMessage);
      resolve(reply);
    };
    child.on('message', onMessage);
    child.send(message);
  });
}

/**
 * Resolves once `check` holds, evaluated whenever one of `listeners` is called (a pool calls them on every
 * report of its children), or rejects after `timeoutMs`.
 */
export function untilChecked(
  listeners: Set<() => void>,
  what: string,
  check: () => boolean,
  timeoutMs: number,
): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const listener = () => {
      if (!check()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      listeners.delete(listener);
    };
    listeners.add(listener);
  });
}

/** Asks each load-client process to close (`{ type: 'close' }`) and waits for it to exit (killed after 5 s). */
export async function closeChildren(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.connected) child.send({ type: 'close' });
      await stopProcess(child, 5000);
    }),
  );
}
