/** HERALD_MAX_PENDING_HANDSHAKES' bookkeeping (in this project because Nest, which it imports, is ESM only). */
import type { IncomingMessage } from 'node:http';
import { parseConfig } from '../../apps/herald/src/config/config.schema';
import { MetricsService } from '../../apps/herald/src/metrics/metrics.service';
import {
  HandshakeAdmission,
  SHED_MAX_DELAY_MS,
  SHED_MIN_DELAY_MS,
} from '../../apps/herald/src/connections/handshake-admission';

function admission(
  maxPending: number,
  env: Record<string, string> = {},
): { admission: HandshakeAdmission; metrics: MetricsService } {
  const config = parseConfig({
    DATABASE_URL: 'postgres://localhost/x',
    REDIS_URL: 'redis://localhost',
    HERALD_API_KEYS: 'k'.repeat(32),
    HERALD_JWT_SECRET: 's'.repeat(32),
    HERALD_MAX_PENDING_HANDSHAKES: String(maxPending),
    ...env,
  });
  const metrics = new MetricsService(config);
  const a = new HandshakeAdmission(config, metrics);
  a.random = () => 0;
  return { admission: a, metrics };
}

describe('HandshakeAdmission', () => {
  it('admits up to the bound, sheds beyond it, and admits again once a handshake is done (once per handshake)', async () => {
    const { admission: a, metrics } = admission(2);
    const first = a.enter();
    const second = a.enter();
    expect(first).not.toBeNull();
    expect(second).not.toBeNull();
    expect(a.enter()).toBeNull();
    expect(a.inProgress).toBe(2);
    first!.done();
    first!.done();
    expect(a.inProgress).toBe(1);
    expect(a.enter()).not.toBeNull();
    expect(a.inProgress).toBe(2);
    a.shed('websocket');
    a.shed('sse');
    const shed = (await metrics.registry.getSingleMetric('herald_handshakes_shed_total')!.get()).values;
    expect(shed.map((v) => [v.labels.transport, v.value]).sort()).toEqual([
      ['sse', 1],
      ['websocket', 1],
    ]);
    expect(await metrics.registry.metrics()).toMatch(/^herald_connection_setup_seconds_count\{[^}]*\} 1$/m);
  });

  it('gives shed clients successive slots spaced by the setup rate, from at least the minimum delay, capped', () => {
    const { admission: a } = admission(10);
    const delays = Array.from({ length: 5 }, () => a.shed('websocket'));
    // No setup measured yet: 50 ms each, 10 at a time, so one slot every 5 ms.
    expect(delays[0]).toBeGreaterThanOrEqual(SHED_MIN_DELAY_MS);
    for (let i = 1; i < delays.length; i++) {
      expect(delays[i]! - delays[i - 1]!).toBeGreaterThanOrEqual(4);
      expect(delays[i]! - delays[i - 1]!).toBeLessThanOrEqual(6);
    }
    // A storm far beyond what the replica can take in 30 s is told to come back at most 30 s later.
    let last = 0;
    for (let i = 0; i < 20_000; i++) last = a.shed('websocket');
    expect(last).toBeLessThanOrEqual(SHED_MAX_DELAY_MS);
    expect(last).toBeGreaterThan(SHED_MAX_DELAY_MS - 1000);
  });

  /** An upgrade request from `peer`, stamped by its proxy `ageMs` ago (no stamp when undefined). */
  const request = (peer: string, ageMs?: number) =>
    ({
      socket: { remoteAddress: peer },
      headers: ageMs === undefined ? {} : { 'x-request-start': `t=${((Date.now() - ageMs) / 1000).toFixed(3)}` },
    }) as unknown as IncomingMessage;

  it('turns away a request its trusted proxy stamped longer ago than the bound, in the slots shed clients get', async () => {
    const { admission: a, metrics } = admission(10, {
      HERALD_MAX_QUEUE_AGE_MS: '2000',
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
    });
    expect(a.admit('websocket', request('127.0.0.1', 100))).toHaveProperty('done');
    expect(a.admit('websocket', request('127.0.0.1'))).toHaveProperty('done');
    expect(a.tooOld('websocket', request('127.0.0.1', 1900))).toBeNull();
    const before = Date.now();
    const first = a.admit('websocket', request('127.0.0.1', 2500));
    expect(Object.keys(first)).toEqual(['retryAfterMs']);
    const turnedAway = (first as { retryAfterMs: number }).retryAfterMs;
    expect(turnedAway).toBeGreaterThanOrEqual(SHED_MIN_DELAY_MS);
    // The next shed client gets the slot after it, one slot (5 ms) later: the two share one virtual queue.
    // Compared as times, not as delays from two different moments (a busy machine may let milliseconds
    // pass between the calls, and a delay is counted from its own call).
    const shed = a.shed('sse');
    const after = Date.now();
    expect(after + shed - (before + turnedAway)).toBeGreaterThanOrEqual(4);
    // Only the admitted ones hold a place.
    expect(a.inProgress).toBe(2);
    // From an address that is not a trusted proxy, the stamp means nothing.
    expect(a.admit('sse', request('10.1.2.3', 60_000))).toHaveProperty('done');
    const counted = (await metrics.registry.getSingleMetric('herald_handshakes_too_old_total')!.get()).values;
    expect(counted.map((v) => [v.labels.transport, v.value])).toEqual([['websocket', 1]]);
  });

  it('applies no bound while even the youngest stamp is past it on a replica that keeps up (a proxy clock behind), nor when it is 0', () => {
    const skewed = admission(10, { HERALD_MAX_QUEUE_AGE_MS: '2000', HERALD_TRUSTED_PROXIES: '127.0.0.1' }).admission;
    for (let i = 0; i < 5; i++) expect(skewed.tooOld('websocket', request('127.0.0.1', 5000))).toBeNull();
    // Shedding, the same stamps are a queue: a storm, where the bound does its work.
    skewed.shed('websocket');
    expect(skewed.tooOld('websocket', request('127.0.0.1', 5000))).toBeGreaterThanOrEqual(SHED_MIN_DELAY_MS);
    const off = admission(10, { HERALD_MAX_QUEUE_AGE_MS: '0', HERALD_TRUSTED_PROXIES: '127.0.0.1' }).admission;
    expect(off.admit('websocket', request('127.0.0.1', 9000))).toHaveProperty('done');
  });
});
