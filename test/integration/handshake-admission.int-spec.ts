/** HERALD_MAX_PENDING_HANDSHAKES' bookkeeping (in this project because Nest, which it imports, is ESM only). */
import { parseConfig } from '../../apps/herald/src/config/config.schema';
import { MetricsService } from '../../apps/herald/src/metrics/metrics.service';
import {
  HandshakeAdmission,
  SHED_MAX_DELAY_MS,
  SHED_MIN_DELAY_MS,
} from '../../apps/herald/src/connections/handshake-admission';

function admission(maxPending: number): { admission: HandshakeAdmission; metrics: MetricsService } {
  const config = parseConfig({
    DATABASE_URL: 'postgres://localhost/x',
    REDIS_URL: 'redis://localhost',
    HERALD_API_KEYS: 'k'.repeat(32),
    HERALD_JWT_SECRET: 's'.repeat(32),
    HERALD_MAX_PENDING_HANDSHAKES: String(maxPending),
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
});
