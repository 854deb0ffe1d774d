#!/usr/bin/env node
// `npm run capacity -- --users 1000000 --rate 10000 --broadcasts-per-second 1 --broadcast-size 100000`
// A capacity plan from measured constants (bench/capacity-constants.json, made by `npm run bench:capacity`):
// replicas, PostgreSQL cores, writes and storage, Redis commands and shards, bus messages, and the first wall.
// The model (scripts/lib/capacity-model.mjs) and every constant are explained in docs/scaling.md. No build
// step: plain Node.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingConstants, plan, PlanError } from './lib/capacity-model.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_CONSTANTS = join(ROOT, 'bench', 'capacity-constants.json');

const USAGE = `usage: npm run capacity -- --users N --rate N [options]

  --users N                  connected users
  --rate N                   unicast notifications/s (one recipient each)
  --broadcasts-per-second N  topic or everyone broadcasts/s (default 0)
  --broadcast-size N         recipients of each broadcast (needed when broadcasts-per-second > 0)
  --retention-hours N        how long notifications are kept after they are final (default 168)
  --inbox-days N             how long they stay listed in inboxes from publish (default 30; 0: inbox off)
  --constants FILE           measured constants (default bench/capacity-constants.json)
  --json                     print the plan as JSON
  --help                     this text`;

/** Bad input: the message and the usage on stderr, exit code 2. */
class UsageError extends Error {}

const OPTIONS = {
  users: { name: 'users', integer: true, min: 1 },
  rate: { name: 'rate', min: 0 },
  'broadcasts-per-second': { name: 'broadcastsPerSecond', min: 0, fallback: 0 },
  'broadcast-size': { name: 'broadcastSize', integer: true, min: 1 },
  'retention-hours': { name: 'retentionHours', min: 0, fallback: 168 },
  'inbox-days': { name: 'inboxDays', min: 0, fallback: 30 },
};

/**
 * The command line as { users, rate, broadcastsPerSecond, broadcastSize, retentionHours, inboxDays, constants,
 * json }.
 */
function parseArgs(argv) {
  const out = { constants: DEFAULT_CONSTANTS, json: false, help: false };
  const seen = new Set();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s) : [arg, undefined];
    if (flag === '--json' || flag === '--help' || flag === '-h') {
      out[flag === '--json' ? 'json' : 'help'] = true;
      continue;
    }
    const key = flag.replace(/^--/, '');
    if (!flag.startsWith('--') || (!(key in OPTIONS) && key !== 'constants'))
      throw new UsageError(`unknown option ${arg}`);
    if (seen.has(key)) throw new UsageError(`--${key} given twice`);
    seen.add(key);
    const value = inline ?? argv[++i];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`--${key} needs a value`);
    if (key === 'constants') {
      out.constants = resolve(value);
      continue;
    }
    const spec = OPTIONS[key];
    const number = Number(value.replace(/_/g, ''));
    if (value.trim() === '' || !Number.isFinite(number))
      throw new UsageError(`--${key} needs a number, not "${value}"`);
    if (number < spec.min) throw new UsageError(`--${key} must be at least ${spec.min}, not ${value}`);
    if (spec.integer && !Number.isInteger(number))
      throw new UsageError(`--${key} must be a whole number, not ${value}`);
    out[spec.name] = number;
  }
  if (out.help) return out;
  for (const [key, spec] of Object.entries(OPTIONS)) {
    if (out[spec.name] !== undefined) continue;
    if (spec.fallback !== undefined) out[spec.name] = spec.fallback;
    else if (key !== 'broadcast-size') throw new UsageError(`--${key} is required`);
  }
  if (out.broadcastsPerSecond > 0 && out.broadcastSize === undefined)
    throw new UsageError('--broadcast-size is required when --broadcasts-per-second is above 0');
  out.broadcastSize ??= 0;
  if (out.broadcastSize > out.users)
    throw new UsageError(
      `--broadcast-size (${out.broadcastSize}) cannot exceed --users (${out.users}): the model counts connected recipients`,
    );
  return out;
}

/** The constants file, every value the model reads checked to be there. */
function loadConstants(file) {
  let doc;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(
      `cannot read the constants file ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`,
    );
  }
  const missing = missingConstants(doc);
  if (missing.length > 0)
    throw new UsageError(`the constants file ${file} lacks or has bad values for: ${missing.join(', ')}`);
  return doc;
}

const num = (n, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }).replace(/,/g, ' ')
    : '∞';
/** Three significant digits or so: 12 345, 123, 12.3, 1.23, 0.0123. */
const sig = (n) =>
  !Number.isFinite(n)
    ? '∞'
    : n >= 100
      ? num(n)
      : n >= 10
        ? num(n, 1)
        : n >= 1 || n === 0
          ? num(n, 2)
          : String(Number(n.toPrecision(2)));
function bytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${sig(n)} ${units[i]}`;
}

function render(p, doc, file) {
  const m = doc.measured ?? {};
  const a = doc.assumptions;
  const l = p.load;
  const lines = [];
  const row = (label, value, why = '') => lines.push(`  ${label.padEnd(18)} ${value}${why ? `   ${why}` : ''}`);
  lines.push('Herald capacity plan');
  const broadcasts =
    l.broadcastsPerSecond > 0
      ? `${sig(l.broadcastsPerSecond)} broadcast/s × ${num(l.broadcastSize)} recipients`
      : 'no broadcasts';
  lines.push(
    `  load: ${num(l.users)} connected users (${num(l.connections)} connections), ${num(l.rate)} unicast/s, ${broadcasts}` +
      ` = ${num(l.deliveriesPerSecond)} deliveries/s; retention ${num(l.retentionHours)} h, inbox ${num(l.inboxDays ?? 0)} days`,
  );
  const machine = m.machine ? `${m.machine.cpus} × ${m.machine.cpuModel}, Node ${m.machine.node}` : 'unknown machine';
  const shown = relative(ROOT, file).startsWith('..') ? file : relative(ROOT, file);
  lines.push(
    `  constants: ${shown} (measured ${String(m.at ?? '?').slice(0, 10)} on ${machine}, server ${String(m.server?.commit ?? '?').slice(0, 7)})`,
  );
  lines.push('');
  const r = p.replicas;
  lines.push(`Replicas: ${num(r.count)} (bound by ${r.boundBy})`);
  row(
    'by connections',
    num(r.byConnections),
    `${num(l.connections)} / ${num(doc.constants.replica.connectionsPerReplica.value)} per replica`,
  );
  row(
    'by memory',
    num(r.byMemory),
    `${bytes(doc.constants.replica.memoryPerConnectionBytes.value)} per connection in ${bytes(a.replicaMemoryBytes.value)} per replica`,
  );
  row(
    'by CPU',
    num(r.byCpu),
    `${sig(r.cpuCoresTotal)} cores of work at ${Math.round(a.replicaCpuCores.value * 100)}% of a core per replica`,
  );
  row(
    'each replica',
    `${num(r.perReplicaUnicastPerSecond)} unicast/s, ${Math.round(r.cpuPerReplica * 100)}% of a core, ${bytes(r.memoryBytesPerReplica)} RSS`,
  );
  row(
    'one replica',
    `${num(r.unicastPerSecondPerReplicaAtBudget)} unicast/s or ${num(r.broadcastDeliveriesPerSecondPerReplicaAtBudget)} broadcast deliveries/s at its CPU budget`,
  );
  lines.push('');
  const pg = p.postgres;
  lines.push('PostgreSQL (one primary)');
  row(
    'CPU',
    `${sig(pg.cpuCores)} cores`,
    `${sig(pg.cpuCoresBusy)} busy, planned at ${Math.round(a.postgresCpuUtilization.value * 100)}%`,
  );
  row(
    'writes',
    `${num(pg.rowsPerSecond)} rows/s, WAL ${bytes(pg.walBytesPerSecond)}/s (${bytes(pg.walBytesPerDay)}/day)`,
  );
  row(
    'storage',
    `${bytes(pg.storedBytesPerDay)}/day; ${bytes(pg.storedBytesAtRetention)} held ${num(pg.heldDays)} days`,
    `(users and cursors: ${bytes(pg.usersBytes)})`,
  );
  lines.push('');
  const rd = p.redis;
  lines.push(
    `Redis: ${num(rd.shards)} shard${rd.shards === 1 ? '' : 's'} (one core each, planned at ${Math.round(a.redisShardCpuUtilization.value * 100)}%)`,
  );
  row(
    'commands',
    `${num(rd.commandsPerSecond)}/s`,
    `a shard takes about ${num(rd.commandsPerSecondPerShard)}/s of this mix`,
  );
  row('CPU', `${sig(rd.cpuCoresBusy)} cores busy`);
  row('memory', bytes(rd.memoryBytes), 'presence');
  lines.push('');
  lines.push('Bus (Redis pub/sub between replicas)');
  row(
    'messages',
    `${num(p.bus.publishedPerSecond)}/s published, ${num(p.bus.receivedPerSecond)}/s received`,
    `(${num(p.bus.receivedPerSecondPerReplica)}/s per replica)`,
  );
  lines.push('');
  const w = p.firstWall;
  lines.push(
    `First wall: ${w.name}: needs ${sig(w.need)} of ${sig(w.ceiling)} ${w.unit}` +
      (w.headroom >= 1
        ? `; the load can grow about ${sig(w.headroom)}× before it is reached.`
        : `: this load does not fit (${sig(w.headroom)}×).`),
  );
  for (const wall of p.walls)
    lines.push(
      `  - ${wall.name}: ${sig(wall.need)} of ${sig(wall.ceiling)} ${wall.unit}, ${sig(wall.headroom)}× headroom` +
        (wall.liftedBy ? ` (lifted by ${wall.liftedBy})` : ` (${wall.why})`),
    );
  lines.push('  Replicas and Redis shards are added freely; a wall is what one more of them does not move.');
  if (p.extrapolated.length > 0)
    lines.push(
      '',
      `Note: ${num(r.perReplicaUnicastPerSecond)} unicast/s per replica is outside the measured rates of ${p.extrapolated.join(', ')}; the nearest measured value was used.`,
    );
  return `${lines.join('\n')}\n`;
}

function main() {
  try {
    const args = parseArgs(process.argv.slice(2));
    if (args.help) {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    const doc = loadConstants(args.constants);
    const { constants, json, help: _help, ...load } = args;
    const result = plan(load, doc);
    if (json)
      process.stdout.write(`${JSON.stringify({ constants: constants, measured: doc.measured, ...result }, null, 2)}\n`);
    else process.stdout.write(render(result, doc, constants));
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof PlanError)) throw error;
    process.stderr.write(`capacity: ${error.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
}

main();
