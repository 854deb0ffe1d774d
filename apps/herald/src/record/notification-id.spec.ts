import { idBoundAt, idTime, newNotificationId } from './notification-id';

describe('notification ids', () => {
  it('are UUIDv7: version 7, RFC variant, the millisecond in the first 48 bits', () => {
    const at = Date.UTC(2026, 11, 7, 12, 34, 56, 789);
    const id = newNotificationId(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(idTime(id)).toBe(at);
  });

  it('sort by time against the bounds of their windows, and do not repeat', () => {
    const at = Date.UTC(2026, 11, 7, 12);
    const ids = Array.from({ length: 2000 }, () => newNotificationId(at));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(idBoundAt(at) <= id).toBe(true);
      expect(id < idBoundAt(at + 1)).toBe(true);
    }
    expect(idBoundAt(at)).toBe('01a25060-0600-0000-0000-000000000000');
  });
});
