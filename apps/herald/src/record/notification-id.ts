import { randomFillSync } from 'node:crypto';

/** Random bytes drawn at a time: one `randomFillSync` serves this many ids. */
const POOL_IDS = 512;
const pool = Buffer.alloc(POOL_IDS * 10);
let used = POOL_IDS;

/**
 * A notification id: a UUIDv7 (RFC 9562), its first 48 bits the millisecond `at`, then 74 random bits.
 * The record is partitioned by these ids, so a notification's partition is its creation's time window
 * (ADR 0020), found from the id alone by every statement that has it.
 */
export function newNotificationId(at: number = Date.now()): string {
  if (used === POOL_IDS) {
    randomFillSync(pool);
    used = 0;
  }
  const random = pool.subarray(used * 10, ++used * 10);
  const hex = Math.floor(at).toString(16).padStart(12, '0');
  const r = random.toString('hex');
  // Version 7 in the 13th digit; the variant (10xx) in the 17th.
  const variant = ((random[2]! & 0x3f) | 0x80).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${r.slice(0, 3)}-${variant}${r.slice(6, 8)}-${r.slice(8, 20)}`;
}

/** The lowest id of millisecond `at`: the bound of a partition starting then. */
export function idBoundAt(at: number): string {
  const hex = Math.floor(at).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

/** The millisecond a UUIDv7 was made at (its first 48 bits). */
export function idTime(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
