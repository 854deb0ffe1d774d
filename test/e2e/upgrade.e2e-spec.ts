import { SCHEMA_VERSION } from '../../apps/herald/src/database/data-source';
import { createTestDatabase, TestDatabase } from '../helpers/database';
import { LogLine, runMigrateCli } from '../helpers/old-record';
import { deleteRedisPrefix, testRedisClient, testRedisPrefix } from '../helpers/redis';
import { Replica } from '../helpers/replica';
import { waitFor } from '../helpers/wait';

const REFUSAL = 'upgrade fence: replicas of another version still beat presence; not starting';
const WAITING = 'upgrade fence: waiting for replicas of another version to stop beating';

function jsonLines(log: string): LogLine[] {
  return log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/**
 * The upgrade fence (docs/adr/0008-upgrade-fence.md) across processes: a replica of this version started
 * while a replica of the previous one still beats presence in Redis. The test replicas beat every 300 ms,
 * so a beat lives 900 ms and the fence waits that long before refusing, unless told otherwise.
 */
describe('Upgrade fence', () => {
  let db: TestDatabase;
  let redisPrefix: string;
  const redis = testRedisClient();
  const replicas: Replica[] = [];
  const replica = async (id: string) => {
    const r = await Replica.create(id, { databaseUrl: db.url, redisPrefix });
    replicas.push(r);
    return r;
  };
  /** A beat as a replica of another version writes it: no `schema` before the stream record. */
  const oldBeat = (replicaId: string, ttlMs: number, schema?: string) =>
    redis.set(
      `${redisPrefix}:replica:${replicaId}`,
      JSON.stringify({ replicaId, connections: 2, at: new Date().toISOString(), ...(schema ? { schema } : {}) }),
      'PX',
      ttlMs,
    );

  beforeAll(async () => {
    db = await createTestDatabase('upgrade_fence');
    redisPrefix = testRedisPrefix('upgrade-fence');
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop().catch(() => undefined)));
    await db?.drop();
    await deleteRedisPrefix(redisPrefix);
    redis.disconnect();
  });

  it('refuses to start while a replica of another version beats presence, naming it, and migrates nothing', async () => {
    await oldBeat('old-1', 60_000);
    await oldBeat('mid-1', 60_000, 'ChecksOnReplicas1764140000000');
    const refused = await replica('fence-new-1');
    expect(await refused.runUntilExit()).toBe(75);
    const log = refused.log();
    const refusal = jsonLines(log).find((l) => l.message === REFUSAL);
    expect(refusal?.schema).toBe(SCHEMA_VERSION);
    expect(refusal?.replicas).toEqual(
      expect.arrayContaining([
        { replicaId: 'old-1', schema: null },
        { replicaId: 'mid-1', schema: 'ChecksOnReplicas1764140000000' },
      ]),
    );
    expect(log).toContain('herald: failed to start: replicas of another version still beat presence');
    expect(log).toContain('stop every one of them before starting this version');
    // The fence ran before the migrations: nothing was written.
    expect(await db.query(`SELECT to_regclass('herald_migrations') AS t`)).toEqual([{ t: null }]);
    expect(await redis.exists(`${redisPrefix}:replica:fence-new-1`)).toBe(0);

    // npm run migrate is fenced the same way.
    const migrate = await runMigrateCli(db.url, redisPrefix);
    expect(migrate.code).toBe(75);
    expect(migrate.lines.map((l) => l.message)).toContain(REFUSAL);
    expect(await db.query(`SELECT to_regclass('herald_migrations') AS t`)).toEqual([{ t: null }]);
  });

  it('starts once the old beats are gone, beats its schema, and lets a replica of the same version start beside it', async () => {
    await redis.del(`${redisPrefix}:replica:old-1`, `${redisPrefix}:replica:mid-1`);
    const first = await replica('fence-new-2');
    await first.start();
    const beat = JSON.parse((await redis.get(`${redisPrefix}:replica:fence-new-2`)) ?? '{}') as { schema?: string };
    expect(beat.schema).toBe(SCHEMA_VERSION);
    const last = await db.query<{ name: string }>('SELECT name FROM herald_migrations ORDER BY id DESC LIMIT 1');
    expect(last).toEqual([{ name: SCHEMA_VERSION }]);

    // A rolling restart of this version: the first one's beat is no bar.
    const second = await replica('fence-new-3');
    await second.start();
    expect(jsonLines(second.log()).filter((l) => String(l.message).startsWith('upgrade fence'))).toEqual([]);
  });

  it('waits for a replica of the previous version that stops beating within one presence TTL, then starts', async () => {
    await oldBeat('old-2', 60_000);
    // Beats every 3 s here: the fence waits up to 9 s before refusing.
    const late = await Replica.create('fence-new-4', {
      databaseUrl: db.url,
      redisPrefix,
      HERALD_PRESENCE_HEARTBEAT_MS: '3000',
    });
    replicas.push(late);
    const started = late.start();
    started.catch(() => undefined);
    await waitFor('the fence to wait for old-2', () => late.log().includes(WAITING), 8_000);
    // The old replica stops: its beat goes.
    await redis.del(`${redisPrefix}:replica:old-2`);
    await started;
    const messages = jsonLines(late.log()).map((l) => l.message);
    expect(messages).toContain('upgrade fence passed: no replica of another version beats');
    expect(messages).not.toContain(REFUSAL);
  });
});
