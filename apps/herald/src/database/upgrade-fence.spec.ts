import type { ReplicaBeat } from '../routing/presence.repository';
import { passUpgradeFence, sharesDatabase, UpgradeFenceError } from './upgrade-fence';

const SCHEMA = 'ExpireOpenDeliveries1764150000000';

/** Presence whose beats are `rounds[i]` at the i-th read (the last one from then on). */
function presence(...rounds: ReplicaBeat[][]): { beats: () => Promise<ReplicaBeat[]>; reads: () => number } {
  let reads = 0;
  return {
    beats: async () => rounds[Math.min(reads++, rounds.length - 1)]!,
    reads: () => reads,
  };
}

/** What the fence logged, by level. */
const lines: Record<'log' | 'warn' | 'error', unknown[]> = { log: [], warn: [], error: [] };
const log = {
  log: (m: unknown) => void lines.log.push(m),
  warn: (m: unknown) => void lines.warn.push(m),
  error: (m: unknown) => void lines.error.push(m),
};
const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

describe('passUpgradeFence', () => {
  beforeEach(() => {
    for (const level of ['log', 'warn', 'error'] as const) lines[level] = [];
  });

  it('passes at once when no replica beats, or only replicas of the same schema', async () => {
    const none = presence([]);
    await passUpgradeFence(none, { schema: SCHEMA, floor: SCHEMA, waitMs: 10_000 }, quiet);
    const same = presence([{ replicaId: 'r1', schema: SCHEMA }]);
    await passUpgradeFence(same, { schema: SCHEMA, floor: SCHEMA, waitMs: 10_000 }, quiet);
    expect([none.reads(), same.reads()]).toEqual([1, 1]);
  });

  it('lets replicas of any schema at or above the floor serve beside it: a later release that kept the floor, or this one beside a newer', async () => {
    const later = 'AddSomething1765000000000';
    const beats = presence([
      { replicaId: 'r1', schema: SCHEMA },
      { replicaId: 'r2', schema: later },
    ]);
    await passUpgradeFence(beats, { schema: later, floor: SCHEMA, waitMs: 10_000 }, quiet);
    await passUpgradeFence(beats, { schema: SCHEMA, floor: SCHEMA, waitMs: 10_000 }, quiet);
    expect(beats.reads()).toBe(2);
    expect([sharesDatabase(later, SCHEMA), sharesDatabase(null, SCHEMA), sharesDatabase('Typo', SCHEMA)]).toEqual([
      true,
      false,
      false,
    ]);
  });

  it('waits for a replica of another version whose beat goes within the wait', async () => {
    const old = { replicaId: 'old-1', schema: null };
    const beats = presence([old], [old], []);
    await passUpgradeFence(beats, { schema: SCHEMA, floor: SCHEMA, waitMs: 5_000, pollMs: 5 }, log);
    expect(beats.reads()).toBe(3);
    expect(lines.warn).toEqual([expect.objectContaining({ replicas: [old], waitMs: 5_000 })]);
    expect(lines.log).toEqual([expect.objectContaining({ message: expect.stringContaining('passed') as unknown })]);
    expect(lines.error).toEqual([]);
  });

  it('refuses, naming every replica of another version, when they still beat at the end of the wait', async () => {
    const beats = presence([
      { replicaId: 'old-1', schema: null },
      { replicaId: 'new-1', schema: SCHEMA },
      { replicaId: 'mid-1', schema: 'ChecksOnReplicas1764140000000' },
    ]);
    const startedAt = Date.now();
    const refusal = await passUpgradeFence(beats, { schema: SCHEMA, floor: SCHEMA, waitMs: 100, pollMs: 10 }, log).then(
      () => null,
      (error: unknown) => error,
    );
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(95);
    expect(refusal).toBeInstanceOf(UpgradeFenceError);
    const error = refusal as UpgradeFenceError;
    expect(error.replicas.map((r) => r.replicaId)).toEqual(['old-1', 'mid-1']);
    expect(error.message).toContain('old-1 (no schema: before the stream record)');
    expect(error.message).toContain('mid-1 (schema ChecksOnReplicas1764140000000)');
    expect(error.message).toContain('stop every one of them');
    // The JSON log line names them too, with their schemas.
    expect(lines.error).toEqual([
      expect.objectContaining({
        replicas: [
          { replicaId: 'old-1', schema: null },
          { replicaId: 'mid-1', schema: 'ChecksOnReplicas1764140000000' },
        ],
        schema: SCHEMA,
      }),
    ]);
  });
});
