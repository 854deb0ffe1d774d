import { AgeFloor, MAX_BELIEVABLE_QUEUE_MS, queueAgeMs } from './queue-age';

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
    // Node joins a repeated X-Request-Start into one string.
    for (const header of [undefined, 't=1796599991.5, t=1796599991.5', '', 't=', 'soon', '-5', '1e12', 't=1.2.3'])
      expect(queueAgeMs(header, now)).toBeUndefined();
  });

  it('takes an age below zero or past ten minutes for clocks out of step, and ignores it', () => {
    expect(queueAgeMs(`t=${(now + 5) / 1000}`, now)).toBeUndefined();
    expect(queueAgeMs(`t=${(now - MAX_BELIEVABLE_QUEUE_MS - 1) / 1000}`, now)).toBeUndefined();
    expect(queueAgeMs(`t=${(now - MAX_BELIEVABLE_QUEUE_MS) / 1000}`, now)).toBe(MAX_BELIEVABLE_QUEUE_MS);
  });
});

describe('AgeFloor', () => {
  it('answers the youngest age of this window and the one before, and forgets older ones', () => {
    const floor = new AgeFloor();
    expect(floor.observe(9000, 0)).toBe(9000);
    expect(floor.observe(100, 1000)).toBe(100);
    expect(floor.observe(9000, 20_000)).toBe(100);
    // A new window: the last one's floor still counts.
    expect(floor.observe(9500, 31_000)).toBe(100);
    // Two windows on, it is gone.
    expect(floor.observe(9500, 62_000)).toBe(9500);
    // After a long quiet spell nothing from before counts.
    expect(floor.observe(8000, 500_000)).toBe(8000);
  });
});
