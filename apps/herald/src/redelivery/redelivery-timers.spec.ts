import { RedeliveryJobData } from './queues';
import { CHECK_SLOT_MS, RedeliveryTimers } from './redelivery-timers';

/** The timer structure alone: what runs when, against recording fakes of the two things it calls. */
function setUp(handOff: (id: string, users: string[]) => Promise<number> = async (_id, users) => users.length) {
  const checked: { at: number; checks: RedeliveryJobData[] }[] = [];
  const handedOff: { at: number; id: string; users: string[] }[] = [];
  const scheduler = new RedeliveryTimers({
    checkAll: async (checks: RedeliveryJobData[]) => {
      checked.push({ at: Date.now(), checks });
      return { resent: checks.length };
    },
    handOff: async (id: string, users: string[]) => {
      handedOff.push({ at: Date.now(), id, users: [...users].sort() });
      return handOff(id, users);
    },
    counted: () => undefined,
    warn: () => undefined,
  });
  return { scheduler, checked, handedOff };
}

const check = (userId: string, attempt = 1): RedeliveryJobData => ({ notificationId: 'n1', userId, attempt });

describe('RedeliveryTimers', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('runs row checks in the slot of their due time, never early and at most one slot late, in due order', async () => {
    const { scheduler, checked } = setUp();
    scheduler.schedule([check('late')], () => 900);
    scheduler.schedule([check('early'), check('early-too')], () => 400);
    await jest.advanceTimersByTimeAsync(399);
    expect(checked).toEqual([]);
    await jest.advanceTimersByTimeAsync(CHECK_SLOT_MS);
    expect(checked.map((c) => c.checks.map((x) => x.userId))).toEqual([['early', 'early-too']]);
    expect(checked[0]!.at - 1_000_000).toBeGreaterThanOrEqual(400);
    await jest.advanceTimersByTimeAsync(900);
    expect(checked.map((c) => c.checks.map((x) => x.userId))).toEqual([['early', 'early-too'], ['late']]);
    expect(checked[1]!.at - 1_000_000).toBeLessThanOrEqual(900 + CHECK_SLOT_MS);
    await scheduler.close();
  });

  it('hands off only the users of a broadcast send whose ack this replica did not write, and none when all acked', async () => {
    const { scheduler, checked, handedOff } = setUp();
    scheduler.scheduleStream('b1', ['u1', 'u2', 'u3'], new Date(), Date.now() + 500);
    scheduler.scheduleStream('b2', ['u1'], new Date(), Date.now() + 500);
    scheduler.acked('b1', 'u2');
    scheduler.acked('b2', 'u1');
    scheduler.acked('unknown', 'u1');
    await jest.advanceTimersByTimeAsync(500 + CHECK_SLOT_MS);
    expect(handedOff.map(({ id, users }) => ({ id, users }))).toEqual([{ id: 'b1', users: ['u1', 'u3'] }]);
    // What was handed off is checked as rows at once (attempt 1 was the broadcast's send).
    expect(checked.flatMap((c) => c.checks)).toEqual([
      { notificationId: 'b1', userId: 'u1', attempt: 1 },
      { notificationId: 'b1', userId: 'u3', attempt: 1 },
    ]);
    await scheduler.close();
  });

  it('tries a failed hand-off again a second later, and an ack meanwhile still counts', async () => {
    let fail = true;
    const { scheduler, handedOff } = setUp(async (_id, users) => {
      if (fail) throw new Error('PostgreSQL away');
      return users.length;
    });
    scheduler.scheduleStream('b1', ['u1', 'u2'], new Date(), Date.now() + 300);
    await jest.advanceTimersByTimeAsync(300 + CHECK_SLOT_MS);
    expect(handedOff).toHaveLength(1);
    fail = false;
    scheduler.acked('b1', 'u1');
    await jest.advanceTimersByTimeAsync(1000 + CHECK_SLOT_MS);
    expect(handedOff.map((h) => h.users)).toEqual([['u1', 'u2'], ['u2']]);
    await scheduler.close();
  });

  it('drops every waiting check at shutdown (the record and the reconnect replay have them) and takes no more', async () => {
    const { scheduler, checked, handedOff } = setUp();
    scheduler.schedule([check('a')], () => 400);
    scheduler.scheduleStream('b1', ['u1'], new Date(), Date.now() + 400);
    await scheduler.close();
    scheduler.schedule([check('b')], () => 400);
    await jest.advanceTimersByTimeAsync(2000);
    expect(checked).toEqual([]);
    expect(handedOff).toEqual([]);
  });
});
