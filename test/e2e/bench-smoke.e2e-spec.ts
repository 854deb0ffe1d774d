import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths';

/**
 * Every benchmark scenario at smoke size (`--smoke`: a few dozen connections, a few messages, one
 * repetition), as `npm run bench` would run it, so the benchmarks cannot rot. Needs the build
 * (`npm run build` compiles bench/ into dist/bench).
 */
const root = repoRoot();
const SCENARIOS = ['idle', 'broadcast', 'unicast', 'ingest', 'catchup', 'storm'] as const;

/**
 * The servers each scenario runs by default. ingest has no Socket.IO run (no publish API to load). The
 * scenarios where clients ack (broadcast, unicast, catchup) also run raw-ws-acks, the raw ws server whose
 * clients ack every notification; catchup reports it n/a, as the other baselines (no backlog).
 */
const EXPECTED_SERVERS: Record<(typeof SCENARIOS)[number], string[]> = {
  idle: ['herald', 'raw-ws', 'socket.io'],
  broadcast: ['herald', 'raw-ws', 'raw-ws-acks', 'socket.io'],
  unicast: ['herald', 'raw-ws', 'raw-ws-acks', 'socket.io'],
  ingest: ['herald', 'raw-ws'],
  catchup: ['herald', 'raw-ws', 'raw-ws-acks', 'socket.io'],
  storm: ['herald', 'raw-ws', 'socket.io'],
};

/** Where a scenario's table compares with raw-ws-acks: its column header, or catchup's n/a cell. */
const RAW_ACKS_CELL: Partial<Record<(typeof SCENARIOS)[number], string>> = {
  broadcast: 'acked vs raw-ws-acks',
  unicast: 'p99 vs raw-ws-acks',
  catchup: 'n/a (acks counted, nothing stored)',
};

/** The fields of a run this test reads: how many acks the scenario counted (null: a server without acks). */
interface SmokeRun {
  server: string;
  acked?: number | null;
  storm?: string;
}

interface SmokeResult {
  scenario: string;
  smoke: boolean;
  result: { servers: string[]; complete: Record<string, boolean>; summary: unknown[]; runs: SmokeRun[] };
}

function runScenario(
  scenario: string,
  folder = 'scenarios',
  killAfterMs = 80_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'dist', 'bench', 'bench', folder, `${scenario}.js`), '--smoke'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('bench scenarios (smoke size)', () => {
  it.each(SCENARIOS)(
    'runs %s against Herald and the baselines, to completion',
    async (scenario) => {
      const file = join(root, 'dist', 'bench-results', `${scenario}.smoke.json`);
      rmSync(file, { force: true });
      const { code, output } = await runScenario(scenario);
      if (code !== 0) throw new Error(`${scenario} exited with ${code}:\n${output.slice(-4000)}`);
      expect(existsSync(file)).toBe(true);
      const doc = JSON.parse(readFileSync(file, 'utf8')) as SmokeResult;
      expect(doc.scenario).toBe(scenario);
      expect(doc.smoke).toBe(true);
      const expected = EXPECTED_SERVERS[scenario];
      expect(doc.result.servers).toEqual(expected);
      for (const server of expected)
        expect({ server, complete: doc.result.complete[server] }).toEqual({ server, complete: true });
      expect(doc.result.runs.length).toBeGreaterThan(0);
      expect(output).toContain('median (min–max)');
      const rawAcksCell = RAW_ACKS_CELL[scenario];
      if (rawAcksCell) expect(output).toContain(rawAcksCell);
      if (scenario === 'broadcast' || scenario === 'unicast') {
        // Herald's and raw-ws-acks's acks were counted (complete checks they reached every delivery).
        const acked = doc.result.runs.filter((r) => r.server === 'herald' || r.server === 'raw-ws-acks');
        expect(acked.map((r) => ({ server: r.server, counted: typeof r.acked === 'number' }))).toEqual(
          acked.map((r) => ({ server: r.server, counted: true })),
        );
        expect(acked.length).toBeGreaterThan(1);
      }
      if (scenario === 'storm') {
        // Both storms ran for every server (complete: every client back, nothing lost, every pending acked).
        expect(output).toContain('reconnect storm');
        expect(output).toContain('99% vs socket.io');
        expect(doc.result.runs.map((r) => `${r.server} ${r.storm}`).sort()).toEqual(
          expected.flatMap((server) => [`${server} nginx-restart`, `${server} replica-kill`]).sort(),
        );
      }
    },
    90_000,
  );

  it('runs the delivery record micro-benchmark on both records, each checking every ack landed', async () => {
    const { code, output } = await runScenario('record-models', 'record');
    if (code !== 0) throw new Error(`record-models exited with ${code}:\n${output.slice(-4000)}`);
    expect(output).toMatch(/rep 1 rows k=3: publish [\d.]+ µs, ack [\d.]+ µs per delivery/);
    expect(output).toMatch(/rep 1 cursors k=3: publish [\d.]+ µs, ack [\d.]+ µs per delivery/);
    expect(output).toContain('PostgreSQL CPU µs per delivery, 3 broadcasts to 600 users, median of 1');
  }, 60_000);

  it('runs the upgrade bench: fills a previous release database, converts it, checks and times each step', async () => {
    const { code, output } = await runScenario('upgrade', 'upgrade');
    if (code !== 0) throw new Error(`upgrade exited with ${code}:\n${output.slice(-4000)}`);
    expect(output).toContain('Upgrade conversion: 30000 delivery rows');
    for (const step of [
      'BroadcastStreams1764130000000',
      'ChecksOnReplicas1764140000000',
      'ExpireOpenDeliveries1764150000000',
      'RetentionPartitions1764160000000',
    ])
      expect(output).toMatch(new RegExp(`^${step} .* \\d+ +[\\d.]+ +[\\d.]+$`, 'm'));
    expect(output).toMatch(/conversion progress: send checks settled \d+\/\d+/);
    expect(output).toContain('the converted record checked');
  }, 60_000);

  it('runs the retention soak: publishes acked, the database size held (within 25% at smoke size, 10% at full size) once retention is running', async () => {
    const file = join(root, 'dist', 'bench-results', 'soak.smoke.json');
    rmSync(file, { force: true });
    const { code, output } = await runScenario('soak', 'retention');
    if (code !== 0) throw new Error(`soak exited with ${code}:\n${output.slice(-4000)}`);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      result: { published: number; received: number; publishErrors: number; withinBound: boolean; samples: unknown[] };
    };
    expect(doc.result).toMatchObject({ publishErrors: 0, withinBound: true });
    expect(doc.result.received).toBe(doc.result.published);
    expect(doc.result.samples.length).toBeGreaterThan(20);
    expect(output).toContain('retention soak: 100/s for 32 s, retention 10 s');
  }, 90_000);

  it('runs the capacity constants bench on a private PostgreSQL and Redis, and the calculator plans with what it wrote', async () => {
    const file = join(root, 'dist', 'bench-results', 'capacity-constants.smoke.json');
    rmSync(file, { force: true });
    const { code, output } = await runScenario('constants', 'capacity', 150_000);
    if (code !== 0) throw new Error(`capacity constants exited with ${code}:\n${output.slice(-4000)}`);
    for (const phase of ['idle', 'unicast', 'broadcast']) expect(output).toContain(`=== capacity: ${phase} ===`);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      measured: { smoke: boolean; server: { commit: string } };
      constants: { replica: { cpuMsPerUnicast: { byReplicaRate: { perReplicaPerSecond: number; value: number }[] } } };
    };
    expect(doc.measured.smoke).toBe(true);
    // Both measured rates, each a positive cost (CPU was spent on every unicast).
    expect(doc.constants.replica.cpuMsPerUnicast.byReplicaRate.map((p) => p.perReplicaPerSecond)).toEqual([25, 50]);
    for (const point of doc.constants.replica.cpuMsPerUnicast.byReplicaRate) expect(point.value).toBeGreaterThan(0);
    // What the bench wrote is a constants file the calculator accepts (every constant it reads is there).
    const plan = spawnSync(
      process.execPath,
      [join(root, 'scripts', 'capacity.mjs'), '--constants', file, '--users', '1000', '--rate', '10', '--json'],
      { cwd: root, encoding: 'utf8' },
    );
    expect({ status: plan.status, stderr: plan.stderr }).toEqual({ status: 0, stderr: '' });
    expect((JSON.parse(plan.stdout) as { replicas: { count: number } }).replicas.count).toBeGreaterThanOrEqual(1);
  }, 160_000);
});
