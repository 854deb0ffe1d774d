/**
 * Capacity constants of broadcasts: two replicas (no Nginx), U connected users, a window of them idle, then
 * B everyone broadcasts (`to: {all: true}`: one row on the stream, every user's delivery on their cursor), at
 * most W in flight, each received and acked by every user before the window closes. Costs per delivery.
 *
 *   node dist/bench/bench/capacity/broadcast.js [--users 5000] [--broadcasts 20] [--window 4] [--whole-server]
 *     [--smoke]
 */
import { Args } from '../lib/args';
import { progress, runMain } from '../lib/log';
import { writeResult } from '../lib/results';
import { benchPayload } from '../lib/targets';
import type { BroadcastResult } from './types';
import { measuredSetup } from './window';

const args = new Args();
const USERS = args.num('users', 5000, 50);
const BROADCASTS = args.num('broadcasts', 20, 4);
const IN_FLIGHT = args.num('window', 4, 2);
const IDLE_SECONDS = args.num('idle-seconds', 10, 3);
const REPLICAS = 2;

async function main(): Promise<void> {
  progress(
    `capacity broadcast: ${REPLICAS} replicas, ${USERS} users, ${BROADCASTS} broadcasts, ${IN_FLIGHT} in flight`,
  );
  const users = Array.from({ length: USERS }, (_, k) => `cap-bc-${k}`);
  const result = await measuredSetup(
    { name: 'broadcast', replicas: REPLICAS, users, perClient: 2500, idleSeconds: IDLE_SECONDS },
    async ({ target, pool, counters, idle }) => {
      const base = 1e6;
      const complete = () => {
        let n = 0;
        for (let i = base; i < base + BROADCASTS; i++) if ((pool.messages.get(i)?.count ?? 0) >= USERS) n++;
        return n;
      };
      const deliveries = BROADCASTS * USERS;
      let started = 0;
      let lastAck = 0;
      const acksBefore = pool.acksOk;
      const broadcast = await counters.window('broadcast', async () => {
        started = Date.now();
        for (let published = 0; published < BROADCASTS; published++) {
          await pool.until('a broadcast to complete', () => published - complete() < IN_FLIGHT, 120_000);
          const answer = await target.broadcast(benchPayload(base + published));
          if (answer.recipients !== USERS) throw new Error(`a broadcast reached ${answer.recipients}/${USERS}`);
        }
        await pool.until('every delivery acked', () => pool.acksOk - acksBefore >= deliveries, 120_000);
        lastAck = pool.lastAckAt;
        await pool.flush();
        return deliveries;
      });
      const deliveriesPerSecond = (deliveries * 1000) / Math.max(1, lastAck - started);
      progress(
        `  ${deliveries} deliveries acked at ${deliveriesPerSecond.toFixed(0)}/s, replica CPU ` +
          `${((broadcast.delta['cpu.server']! / deliveries) * 1000).toFixed(1)} µs/delivery`,
      );
      return {
        replicas: REPLICAS,
        users: USERS,
        broadcasts: BROADCASTS,
        deliveriesPerSecond,
        idle,
        broadcast,
      } satisfies BroadcastResult;
    },
  );
  writeResult('capacity-broadcast', args.smoke, { users: USERS, broadcasts: BROADCASTS, window: IN_FLIGHT }, result);
}

runMain(main);
