import { redeliveryDelayMs } from './backoff';

describe('redeliveryDelayMs', () => {
  const policy = { ackTimeoutMs: 1000, redeliveryBackoffMs: 100, redeliveryMaxBackoffMs: 1000 };

  it('waits the ack timeout plus half to all of the backoff', () => {
    expect(redeliveryDelayMs(1, policy, () => 0)).toBe(1050);
    expect(redeliveryDelayMs(1, policy, () => 1)).toBe(1100);
  });

  it('doubles the backoff per attempt', () => {
    expect(redeliveryDelayMs(2, policy, () => 1)).toBe(1200);
    expect(redeliveryDelayMs(3, policy, () => 1)).toBe(1400);
  });

  it('caps the backoff, even for huge attempt numbers', () => {
    expect(redeliveryDelayMs(10, policy, () => 1)).toBe(2000);
    expect(redeliveryDelayMs(1000, policy, () => 1)).toBe(2000);
    expect(redeliveryDelayMs(1000, policy, () => 0)).toBe(1500);
  });

  it('spreads deliveries sent together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => redeliveryDelayMs(4, policy)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(1400);
      expect(d).toBeLessThanOrEqual(1800);
    }
  });
});
