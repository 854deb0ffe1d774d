import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths';

/**
 * The capacity calculator (scripts/capacity.mjs, `npm run capacity`) as a user runs it: a process, its
 * output and its exit code, on the committed constants and on small hand-made ones whose plans can be
 * worked out by hand (docs/scaling.md has the formulas).
 */
const root = repoRoot();
const script = join(root, 'scripts', 'capacity.mjs');
const committed = join(root, 'bench', 'capacity-constants.json');

interface Wall {
  name: string;
  need: number;
  ceiling: number;
  headroom: number;
}

interface Plan {
  load: { deliveriesPerSecond: number; connections: number };
  replicas: {
    count: number;
    boundBy: string;
    byConnections: number;
    byMemory: number;
    byCpu: number;
    cpuCoresTotal: number;
  };
  postgres: {
    cpuCores: number;
    rowsPerSecond: number;
    walBytesPerSecond: number;
    storedBytesPerDay: number;
    storedBytesAtRetention: number;
    usersBytes: number;
  };
  redis: { commandsPerSecond: number; shards: number; commandsPerSecondPerShard: number };
  bus: { publishedPerSecond: number; receivedPerSecond: number };
  walls: Wall[];
  firstWall: Wall;
  extrapolated: string[];
}

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function planOf(...args: string[]): Plan {
  const result = run(...args, '--json');
  if (result.status !== 0) throw new Error(`capacity exited ${result.status}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Plan;
}

const HEADLINE = [
  '--users',
  '1000000',
  '--rate',
  '10000',
  '--broadcasts-per-second',
  '1',
  '--broadcast-size',
  '100000',
];

const value = (v: number) => ({ value: v, unit: 'x', how: 'hand-made' });

/**
 * Round numbers, no background costs: a replica holds 1 000 connections of 100 kB in 1 GB (900 MB free after
 * its 100 MB base), spends 1 ms per unicast and 0.01 ms per broadcast delivery; PostgreSQL 0.5 ms per unicast
 * and 0.005 ms per delivery, 4 rows and 2 000 bytes stored per unicast; Redis 4 commands per unicast.
 */
function handMade(
  overrides: { cpuMsPerUnicast?: unknown; postgresMaxCores?: number; redisCpuMsPerBroadcastPerReplica?: number } = {},
) {
  return {
    format: 'herald-capacity-constants/1',
    measured: { at: '2000-01-01T00:00:00Z', server: { commit: 'handmade' } },
    constants: {
      replica: {
        connectionsPerReplica: value(1000),
        baseMemoryBytes: value(100e6),
        memoryPerConnectionBytes: value(100e3),
        cpuMsPerReplicaSecond: value(0),
        cpuMsPerConnectionSecond: value(0),
        cpuMsPerUnicast: overrides.cpuMsPerUnicast ?? value(1),
        cpuMsPerBroadcastDelivery: value(0.01),
      },
      postgres: {
        cpuMsPerReplicaSecond: value(0),
        cpuMsPerConnectionSecond: value(0),
        cpuMsPerUnicast: value(0.5),
        cpuMsPerBroadcastDelivery: value(0.005),
        rowsPerUnicast: value(4),
        rowsPerBroadcastDelivery: value(1),
        walBytesPerUnicast: value(1000),
        walBytesPerBroadcastDelivery: value(100),
        bytesPerUnicast: value(2000),
        bytesPerBroadcastDelivery: value(50),
        bytesPerUser: value(1000),
      },
      redis: {
        commandsPerReplicaSecond: value(0),
        commandsPerConnectionSecond: value(0.2),
        commandsPerUnicast: value(4),
        commandsPerBroadcast: value(10),
        cpuMsPerReplicaSecond: value(0),
        cpuMsPerConnectionSecond: value(0.001),
        cpuMsPerUnicast: value(0.02),
        cpuMsPerBroadcastPerReplica: value(overrides.redisCpuMsPerBroadcastPerReplica ?? 0.1),
        memoryBytesPerConnection: value(200),
      },
      bus: {
        messagesOutPerUnicast: value(1),
        messagesInPerUnicast: value(1),
        messagesOutPerBroadcast: value(1),
        messagesInPerBroadcastPerReplica: value(1),
      },
    },
    assumptions: {
      replicaCpuCores: { value: 0.5, unit: 'cores', source: 'hand-made' },
      replicaMemoryBytes: { value: 1e9, unit: 'bytes', source: 'hand-made' },
      connectionsPerUser: { value: 1, unit: 'connections', source: 'hand-made' },
      postgresCpuUtilization: { value: 0.5, unit: 'fraction', source: 'hand-made' },
      postgresMaxCores: { value: overrides.postgresMaxCores ?? 64, unit: 'cores', source: 'hand-made' },
      redisShardCpuUtilization: { value: 0.5, unit: 'fraction', source: 'hand-made' },
    },
  };
}

/** Folders of the hand-made constants files, removed after the suite. */
const made: string[] = [];

function constantsFile(doc: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-capacity-'));
  made.push(dir);
  const file = join(dir, 'constants.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

describe('capacity calculator (npm run capacity)', () => {
  afterAll(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('plans the headline load from the committed constants and names its first wall', () => {
    const plan = planOf(...HEADLINE);
    expect(plan.load.deliveriesPerSecond).toBe(110_000);
    expect(plan.load.connections).toBe(1_000_000);
    const { replicas } = plan;
    expect(replicas.count).toBe(Math.max(replicas.byConnections, replicas.byMemory, replicas.byCpu));
    const perReplica = (
      JSON.parse(readFileSync(committed, 'utf8')) as {
        constants: { replica: { connectionsPerReplica: { value: number } } };
      }
    ).constants.replica.connectionsPerReplica.value;
    expect(replicas.byConnections).toBe(Math.ceil(1_000_000 / perReplica));
    for (const n of [
      plan.postgres.cpuCores,
      plan.postgres.rowsPerSecond,
      plan.postgres.walBytesPerSecond,
      plan.redis.commandsPerSecond,
    ])
      expect(n).toBeGreaterThan(0);
    expect(plan.redis.shards).toBeGreaterThanOrEqual(1);
    // A broadcast is one bus message, received by every replica.
    expect(plan.bus.receivedPerSecond).toBeGreaterThanOrEqual(replicas.count);
    expect(plan.walls.map((w) => w.name)).toContain(plan.firstWall.name);
    const hardest = Math.min(
      ...plan.walls.filter((w) => w.name !== 'one Redis (without a cluster)').map((w) => w.headroom),
    );
    expect(plan.firstWall.headroom).toBe(hardest);

    const text = run(...HEADLINE);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(`First wall: ${plan.firstWall.name}`);
    expect(text.stdout).toMatch(/Replicas: [\d ]+ \(bound by (connections|memory|CPU)\)/);
  });

  it('works a hand-made plan out as the formulas say', () => {
    const file = constantsFile(handMade());
    const plan = planOf(
      '--constants',
      file,
      '--users',
      '10000',
      '--rate',
      '1000',
      '--broadcasts-per-second',
      '2',
      '--broadcast-size',
      '5000',
      '--retention-hours',
      '48',
      '--inbox-days',
      '1',
    );
    // 10 000 connections / 1 000; 10 000 × 100 kB in 900 MB; (1 000 × 1 ms + 10 000 × 0.01 ms) / 500 ms per replica.
    expect(plan.replicas).toMatchObject({
      byConnections: 10,
      byMemory: 2,
      byCpu: 3,
      count: 10,
      boundBy: 'connections',
    });
    expect(plan.replicas.cpuCoresTotal).toBeCloseTo(1.1, 9);
    // (1 000 × 0.5 + 10 000 × 0.005) ms = 0.55 cores busy, planned at 50%.
    expect(plan.postgres.cpuCores).toBeCloseTo(1.1, 9);
    expect(plan.postgres.rowsPerSecond).toBeCloseTo(1000 * 4 + 10_000 * 1, 6);
    expect(plan.postgres.storedBytesPerDay).toBeCloseTo((1000 * 2000 + 10_000 * 50) * 86_400, 0);
    // Held for the longer of the retention (48 h) and the inbox window (1 day).
    expect(plan.postgres.storedBytesAtRetention).toBeCloseTo(plan.postgres.storedBytesPerDay * 2 + 10_000 * 1000, 0);
    // 10 000 × 0.2 beats + 1 000 × 4 + 2 × 10 commands/s; (10 + 20 + 2 × 10 × 0.1) ms of CPU a second: one shard.
    expect(plan.redis.commandsPerSecond).toBeCloseTo(2000 + 4000 + 20, 6);
    expect(plan.redis.shards).toBe(1);
    // Broadcasts reach all 10 replicas.
    expect(plan.bus).toEqual({
      publishedPerSecond: 1002,
      receivedPerSecond: 1000 + 2 * 10,
      receivedPerSecondPerReplica: 102,
    });
  });

  it('doubles the CPU and the writes when the rate doubles', () => {
    const file = constantsFile(handMade());
    const base = ['--constants', file, '--users', '1000', '--broadcasts-per-second', '0'];
    const one = planOf(...base, '--rate', '4000');
    const two = planOf(...base, '--rate', '8000');
    expect(two.replicas.cpuCoresTotal).toBeCloseTo(2 * one.replicas.cpuCoresTotal, 9);
    expect(two.replicas.byCpu).toBe(2 * one.replicas.byCpu); // 8 and 16 replicas at half a core each
    expect(two.postgres.cpuCores).toBeCloseTo(2 * one.postgres.cpuCores, 9);
    expect(two.postgres.walBytesPerSecond).toBeCloseTo(2 * one.postgres.walBytesPerSecond, 6);
    expect(two.postgres.storedBytesPerDay).toBeCloseTo(2 * one.postgres.storedBytesPerDay, 0);
  });

  it('costs a unicast at the rate each replica publishes, between the measured rates', () => {
    // 2 ms per notification at 100/s per replica, 1 ms at 400/s: at 200/s, 2 × (1/2)^(1/2) on log-log axes.
    const curve = {
      byReplicaRate: [
        { perReplicaPerSecond: 100, value: 2 },
        { perReplicaPerSecond: 400, value: 1 },
      ],
      unit: 'ms',
      how: 'hand-made',
    };
    const file = constantsFile(handMade({ cpuMsPerUnicast: curve }));
    // 2 000 users: 2 replicas by connections; 400 unicast/s is 200/s each, 0.57 cores in all, within 2 × 0.5.
    const plan = planOf('--constants', file, '--users', '2000', '--rate', '400');
    expect(plan.replicas.count).toBe(2);
    expect(plan.replicas.cpuCoresTotal).toBeCloseTo((400 * Math.SQRT2) / 1000, 9);
    expect(plan.extrapolated).toEqual([]);
    // 20 000 users: 20 replicas at 20/s each, below the measured rates: the 100/s cost, and a note.
    const low = planOf('--constants', file, '--users', '20000', '--rate', '400');
    expect(low.replicas.cpuCoresTotal).toBeCloseTo((400 * 2) / 1000, 9);
    expect(low.extrapolated).toEqual(['replica.cpuMsPerUnicast']);
  });

  it('names the first wall that cannot be scaled out, and says when the load does not fit', () => {
    const small = constantsFile(handMade({ postgresMaxCores: 2 }));
    const args = ['--constants', small, '--users', '10000', '--rate', '4000'];
    const plan = planOf(...args);
    // 4 000 × 0.5 ms = 2 cores busy, 4 at 50%: twice what a 2-core primary has.
    expect(plan.firstWall).toMatchObject({ name: 'PostgreSQL primary CPU', need: 4, ceiling: 2, headroom: 0.5 });
    expect(run(...args).stdout).toContain(
      'First wall: PostgreSQL primary CPU: needs 4 of 2 cores: this load does not fit (0.5×)',
    );

    // Redis slow to fan a broadcast out: the one channel every broadcast goes through is reached first.
    const slowRedis = constantsFile(handMade({ redisCpuMsPerBroadcastPerReplica: 2 }));
    const broadcasts = planOf(
      '--constants',
      slowRedis,
      '--users',
      '10000',
      '--rate',
      '10',
      '--broadcasts-per-second',
      '50',
      '--broadcast-size',
      '100',
    );
    expect(broadcasts.firstWall.name).toBe('Redis shard of the broadcast channel');
    // 50 broadcasts/s × 10 replicas × 2 ms = 1 s of CPU a second, against half a core per shard.
    expect(broadcasts.firstWall.need).toBeCloseTo(2, 9);
    // Beside it 10 000 connections × 0.001 ms and 10 unicasts × 0.02 ms: 1.01 s a second, 3 shards.
    expect(broadcasts.redis.shards).toBe(3);
  });

  it.each([
    [[], '--users is required'],
    [['--users', '1000'], '--rate is required'],
    [['--users', 'many', '--rate', '1'], '--users needs a number, not "many"'],
    [['--users', '1000', '--rate', '-5'], '--rate must be at least 0'],
    [['--users', '10.5', '--rate', '1'], '--users must be a whole number'],
    [['--users', '1000', '--rate', '1', '--broadcasts-per-second', '1'], '--broadcast-size is required'],
    [
      ['--users', '1000', '--rate', '1', '--broadcasts-per-second', '1', '--broadcast-size', '2000'],
      'cannot exceed --users',
    ],
    [['--users', '1000', '--rate'], '--rate needs a value'],
    [['--users', '1000', '--rate', '1', '--replicas', '3'], 'unknown option --replicas'],
    [
      ['--users', '1000', '--rate', '1', '--constants', '/nonexistent/constants.json'],
      'cannot read the constants file /nonexistent/constants.json: no such file',
    ],
  ])('refuses %j with exit code 2 and the usage', (args, message) => {
    const result = run(...args);
    expect({ status: result.status, stdout: result.stdout }).toEqual({ status: 2, stdout: '' });
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('usage: npm run capacity -- --users N --rate N');
  });

  it('names the constants a constants file lacks', () => {
    const doc = handMade();
    const partial = {
      ...doc,
      constants: { ...doc.constants, redis: { ...doc.constants.redis, commandsPerUnicast: undefined } },
    };
    const result = run('--constants', constantsFile(partial), '--users', '1000', '--rate', '1');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('lacks or has bad values for: redis.commandsPerUnicast');
  });
});
