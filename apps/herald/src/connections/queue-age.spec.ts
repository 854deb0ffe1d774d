import { MAX_BELIEVABLE_QUEUE_MS, queueAgeMs } from './queue-age';

describe('queueAgeMs', () => {
  const now = 1_796_600_000_000;

  it("reads Nginx's t=<seconds.millis>, and bare seconds, milliseconds and microseconds", () => {
    expect(queueAgeMs('t=1796599991.500', now)).toBe(8500);
    expect(queueAgeMs('1796599991.5', now)).toBe(8500);
    expect(queueAgeMs('t=1796599991500', now)).toBe(8500);
    expect(queueAgeMs('1796599991500000', now)).toBe(8500);
    expect(queueAgeMs('t=1796600000', now)).toBe(0);
  });

  it('ignores a missing, repeated or unreadable header', () => {
    for (const header of [undefined, ['t=1796599991.5', 't=1796599991.5'], '', 't=', 'soon', '-5', '1e12', 't=1.2.3'])
      expect(queueAgeMs(header, now)).toBeUndefined();
  });

  it('takes an age below zero or past ten minutes for clocks out of step, and ignores it', () => {
    expect(queueAgeMs(`t=${(now + 5) / 1000}`, now)).toBeUndefined();
    expect(queueAgeMs(`t=${(now - MAX_BELIEVABLE_QUEUE_MS - 1) / 1000}`, now)).toBeUndefined();
    expect(queueAgeMs(`t=${(now - MAX_BELIEVABLE_QUEUE_MS) / 1000}`, now)).toBe(MAX_BELIEVABLE_QUEUE_MS);
  });
});
