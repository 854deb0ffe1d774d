/**
 * Capacity constants of connections, on one replica (started with --inspect, so a full GC can run before each
 * RSS reading): a window with no connection (what a replica costs by itself: sweep, beats, stream checks),
 * N connections opened (the cost of a connect; RSS, Redis memory and PostgreSQL bytes per connection), then a
 * window of those connections idle (WebSocket pings and presence beats, per connection-second).
 *
 *   node dist/bench/bench/capacity/idle.js [--connections 15000] [--empty-seconds 10] [--idle-seconds 27.5]
 *     [--whole-server] [--smoke]
 */
import { Args } from '../lib/args';
import { ClientPool } from '../lib/clients';
import { progress, runMain, sleep } from '../lib/log';
import { rssBytes } from '../lib/proc';
import { writeResult } from '../lib/results';
import { withTarget } from '../lib/scenario';
import type { IdleResult } from './types';
import { StoreCounters } from './window';

const args = new Args();
const CONNECTIONS = args.num('connections', 15_000, 200);
const EMPTY_SECONDS = args.num('empty-seconds', 10, 3);
// With the window's 2.5 s settle, 30 s: six presence beats exactly (every 5 s), and a ping per connection or two.
const IDLE_SECONDS = args.num('idle-seconds', 27.5, 3);
const WHOLE_SERVER = process.argv.includes('--whole-server');

async function main(): Promise<void> {
  progress(`capacity idle: one replica, ${CONNECTIONS} connections, ${IDLE_SECONDS} s idle`);
  const result = await withTarget('herald', { processes: 1, inspect: true }, async (target) => {
    const counters = await StoreCounters.open(target, WHOLE_SERVER);
    try {
      const pid = target.serverPids()[0]!;
      await sleep(2000);
      const empty = await counters.window('empty', async () => {
        await sleep(EMPTY_SECONDS * 1000);
        return 1;
      });
      await target.gc();
      const rssEmptyBytes = rssBytes(pid);
      const users = Array.from({ length: CONNECTIONS }, (_, k) => `cap-idle-${k}`);
      let pool: ClientPool | undefined;
      let connectPerSecond = 0;
      try {
        const connect = await counters.window('connect', async () => {
          const opened = await ClientPool.connect('idle', target.clientKind, target.clientUrls, users, {
            perClient: 5000,
            concurrency: 64,
          });
          pool = opened.pool;
          connectPerSecond = opened.summary.perSecond;
          if (opened.summary.connected !== CONNECTIONS)
            throw new Error(
              `only ${opened.summary.connected}/${CONNECTIONS} connected: ${opened.summary.errors.join('; ')}`,
            );
          return opened.summary.connected;
        });
        await sleep(3000); // the connects' last writes and PostgreSQL's statistics of them land
        await target.gc();
        const rssConnectedBytes = rssBytes(pid);
        const idle = await counters.window('idle', async () => {
          await sleep(IDLE_SECONDS * 1000);
          return CONNECTIONS;
        });
        progress(
          `  ${CONNECTIONS} connected at ${connectPerSecond.toFixed(0)}/s; RSS ${(rssEmptyBytes / 2 ** 20).toFixed(0)} → ` +
            `${(rssConnectedBytes / 2 ** 20).toFixed(0)} MiB`,
        );
        return {
          replicas: 1,
          connections: CONNECTIONS,
          connected: connect.units,
          rssEmptyBytes,
          rssConnectedBytes,
          connectPerSecond,
          windows: { empty, connect, idle },
        } satisfies IdleResult;
      } finally {
        await pool?.close();
      }
    } finally {
      await counters.close();
    }
  });
  writeResult(
    'capacity-idle',
    args.smoke,
    { connections: CONNECTIONS, emptySeconds: EMPTY_SECONDS, idleSeconds: IDLE_SECONDS },
    result,
  );
}

runMain(main);
