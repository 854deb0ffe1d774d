/**
 * Capacity constants of unicast: two replicas (no Nginx: publishes and connections go to the replicas in
 * turn), U connected users, a window of them idle, then one window per rate of single-user publishes to
 * random users, each received and acked before the window closes. The rates are the fleet's; the costs per
 * notification fall as each replica's rate rises (more publishes per group commit and ack batch), so the
 * calculator interpolates between them by the rate per replica.
 *
 *   node dist/bench/bench/capacity/unicast.js [--users 2000] [--rates 100,300,450] [--seconds 12] [--whole-server]
 *     [--smoke]
 */
import { Args } from '../lib/args';
import type { ClientPool } from '../lib/clients';
import { progress, runMain } from '../lib/log';
import { PacedSender } from '../lib/paced';
import { writeResult } from '../lib/results';
import { percentiles } from '../lib/stats';
import { benchPayload, Target } from '../lib/targets';
import type { UnicastRate, UnicastResult } from './types';
import { measuredSetup, StoreCounters } from './window';

const args = new Args();
const USERS = args.num('users', 2000, 50);
const RATES = args.nums('rates', [100, 300, 450], [50, 100]);
const SECONDS = args.num('seconds', 12, 2);
const IDLE_SECONDS = args.num('idle-seconds', 10, 3);
const REPLICAS = 2;
const MAX_IN_FLIGHT = 512;

async function atRate(
  target: Target,
  pool: ClientPool,
  counters: StoreCounters,
  users: string[],
  rate: number,
  base: number,
) {
  const count = Math.round(rate * SECONDS);
  const sender = new PacedSender(MAX_IN_FLIGHT);
  let achievedRate = 0;
  const acksBefore = pool.acksOk;
  const window = await counters.window(`unicast ${rate}/s`, async () => {
    ({ achievedRate } = await sender.run(count, rate, (k) =>
      target.publish(users[Math.floor(Math.random() * users.length)]!, benchPayload(base + k)),
    ));
    const expected = count - sender.errors;
    await pool.until(`${expected} acked`, () => pool.acksOk - acksBefore >= expected, 120_000);
    await pool.flush();
    return expected;
  });
  const latencies: number[] = [];
  for (let k = 0; k < count; k++) {
    const state = pool.messages.get(base + k);
    if (state) latencies.push(state.first - state.t);
  }
  const p = percentiles(latencies);
  progress(
    `  ${rate}/s: ${window.units} published and acked (${sender.errors} errors) at ${achievedRate.toFixed(0)}/s, ` +
      `p50 ${p.p50} p99 ${p.p99} ms, replica CPU ${(window.delta['cpu.server']! / window.units).toFixed(2)} ms/notification`,
  );
  return {
    rate,
    perReplicaRate: rate / REPLICAS,
    achievedRate,
    publishErrors: sender.errors,
    p50: p.p50,
    p99: p.p99,
    window,
  } satisfies UnicastRate;
}

async function main(): Promise<void> {
  progress(`capacity unicast: ${REPLICAS} replicas, ${USERS} users, rates ${RATES.join(', ')}/s for ${SECONDS} s each`);
  const users = Array.from({ length: USERS }, (_, k) => `cap-uc-${k}`);
  const result = await measuredSetup(
    { name: 'unicast', replicas: REPLICAS, users, perClient: 1000, idleSeconds: IDLE_SECONDS },
    async ({ target, pool, counters, idle }) => {
      const rates: UnicastRate[] = [];
      for (const [i, rate] of RATES.entries())
        rates.push(await atRate(target, pool, counters, users, rate, (i + 1) * 1e6));
      return { replicas: REPLICAS, users: USERS, idle, rates } satisfies UnicastResult;
    },
  );
  writeResult('capacity-unicast', args.smoke, { users: USERS, rates: RATES, seconds: SECONDS }, result);
}

runMain(main);
