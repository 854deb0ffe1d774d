// PostgreSQL, Redis (or a Redis Cluster), the programs they need, and the stack's secrets: reused when they
// answer, else private servers in .stack/ (their binaries and packages: scripts/lib/services.js).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, relative } from 'node:path';
import { StackError, step } from './output.mjs';
import { launch, waitUntil } from './processes.mjs';
import { ROOT, require } from './root.mjs';

const {
  PostgresServer,
  RedisServer,
  ensurePrograms,
  freePort,
  isRoot,
  startTime,
  tcpAnswers,
} = require('../lib/services.js');
const { RedisClusterServers } = require('../lib/redis-cluster.js');
const SHARED_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The programs, installed with apt-get when missing (root on Debian/Ubuntu), else a StackError naming them. */
export function programs(names) {
  try {
    return ensurePrograms(names, { log: step });
  } catch (error) {
    throw new StackError(error.message);
  }
}

/** null when PostgreSQL at `url` runs a query. */
async function postgresAnswers(url) {
  const { Client } = require('pg');
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** PostgreSQL: --postgres-url, else the one on 5432 if it answers, otherwise a private one in .stack/postgres. */
export async function postgres(options, processes, taken) {
  let adminUrl;
  let description;
  if (options.postgresUrl) {
    if (!(await postgresAnswers(options.postgresUrl))) throw new StackError(`--postgres-url does not answer`);
    adminUrl = options.postgresUrl;
    description = `reused the server on ${new URL(adminUrl).host}`;
  } else if (!options.privateServices && (await postgresAnswers(SHARED_POSTGRES))) {
    adminUrl = SHARED_POSTGRES;
    description = 'reused the server on 127.0.0.1:5432';
  } else {
    const { postgresql: bin } = programs(['postgresql']);
    // As root the server runs as the postgres user, who must be able to reach its data. Under a folder it
    // cannot enter (a project in /root), the data goes to /var/tmp.
    let home = join(options.dir, 'postgres');
    if (isRoot() && spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', options.dir]).status !== 0) {
      home = join(
        '/var/tmp',
        `herald-stack-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`,
        'postgres',
      );
      step(`the postgres user cannot enter ${options.dir}: keeping the private PostgreSQL data in ${home}`);
      mkdirSync(dirname(home), { recursive: true, mode: 0o755 });
    }
    const logFile = join(options.dir, 'logs', 'postgres.log');
    const server = new PostgresServer({ bin, home, port: await freePort(55432, taken), logFile });
    if (!existsSync(join(server.dataDir, 'PG_VERSION')))
      step(`initialising a private PostgreSQL in ${shown(server.dataDir)}`);
    server.init();
    step(`starting a private PostgreSQL on 127.0.0.1:${server.port}`);
    try {
      server.start();
    } catch (error) {
      throw new StackError(error.message);
    } finally {
      // Recorded even when pg_ctl failed or timed out: the server it detached may be running all the same.
      const pid = server.pid();
      if (pid) {
        processes.push({
          name: 'postgres',
          pid,
          match: server.dataDir,
          startTime: startTime(pid),
          logFile,
          stop: { pgCtl: server.command('pg_ctl', server.stopArgs('fast')) },
        });
      }
    }
    adminUrl = server.url;
    description = `private server on 127.0.0.1:${server.port} (data in ${shown(server.dataDir)})`;
  }
  const { Client } = require('pg');
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [options.database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${options.database}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${options.database}`;
  return { url: url.toString(), description: `${description}, database ${options.database}` };
}

/** A path relative to the project when inside it, else absolute. */
function shown(path) {
  const rel = relative(ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

/** `user group` owning a folder, for Nginx's `user` directive. */
export function ownerOf(path) {
  const uid = String(statSync(path).uid);
  const user = spawnSync('id', ['-nu', uid], { encoding: 'utf8' }).stdout.trim() || 'root';
  const group = spawnSync('id', ['-gn', uid], { encoding: 'utf8' }).stdout.trim() || user;
  return `${user} ${group}`;
}

/** Redis: --redis-url, else the one on 6379 if it answers PING, otherwise a private one (append-only, so jobs survive). */
export async function redis(options, processes, taken) {
  if (options.redisCluster) return redisCluster(options, processes, taken);
  if (options.redisUrl) {
    const { hostname, port } = new URL(options.redisUrl);
    if (!(await tcpAnswers(Number(port || 6379), hostname, 'PING\r\n', '+PONG'))) {
      throw new StackError('--redis-url does not answer PING');
    }
    return { url: options.redisUrl, description: `reused the server on ${hostname}:${port || 6379}` };
  }
  if (!options.privateServices && (await tcpAnswers(6379, '127.0.0.1', 'PING\r\n', '+PONG'))) {
    return { url: 'redis://127.0.0.1:6379', description: 'reused the server on 127.0.0.1:6379' };
  }
  const { 'redis-server': binary } = programs(['redis-server']);
  const server = new RedisServer({ binary, port: await freePort(56379, taken), dir: join(options.dir, 'redis') });
  mkdirSync(server.dir, { recursive: true });
  const logFile = join(options.dir, 'logs', 'redis.log');
  step(`starting a private Redis on 127.0.0.1:${server.port}`);
  // Redis rewrites its command line; the start time tells this one apart.
  processes.push(launch('redis', binary, server.args(), { logFile, match: 'redis-server' }));
  await waitUntil('Redis', () => server.answers(), 15_000, logFile);
  return {
    url: server.url,
    description: `private server on 127.0.0.1:${server.port} (data in ${relative(ROOT, server.dir)})`,
  };
}

/** A private Redis Cluster in .stack/redis-cluster (scripts/lib/redis-cluster.js), each node a process of the stack. */
export async function redisCluster(options, processes, taken) {
  const { 'redis-server': binary, 'redis-cli': cli } = programs(['redis-server', 'redis-cli']);
  // From 47001: each node's cluster bus takes its port + 10000.
  const cluster = await RedisClusterServers.prepare({
    binary,
    cli,
    dir: join(options.dir, 'redis-cluster'),
    firstPort: 47001,
    taken,
  });
  step(`starting a private Redis Cluster on 127.0.0.1:${cluster.ports.join(', :')}`);
  cluster.ports.forEach((port, i) => {
    const name = `redis-${i + 1}`;
    const logFile = join(options.dir, 'logs', `${name}.log`);
    processes.push(launch(name, binary, cluster.nodeArgs(port), { logFile, match: 'redis-server' }));
  });
  try {
    await cluster.create();
  } catch (error) {
    const logs = `${shown(join(options.dir, 'logs'))}/redis-1.log … redis-${cluster.ports.length}.log`;
    throw new StackError(`${error.message}\nthe nodes' logs: ${logs}`);
  }
  return { nodes: cluster.nodes, description: cluster.description };
}

export function secrets(options) {
  const file = join(options.dir, 'secrets.json');
  const kept = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const made = {
    apiKey: kept.apiKey ?? `hk_dev_${randomBytes(18).toString('base64url')}`,
    jwtSecret: kept.jwtSecret ?? randomBytes(32).toString('base64url'),
    // Added later than the others: a stack folder from before gets one now.
    adminPassword: kept.adminPassword ?? randomBytes(12).toString('base64url'),
  };
  if (JSON.stringify(made) !== JSON.stringify(kept)) {
    writeFileSync(file, JSON.stringify(made, null, 2) + '\n', { mode: 0o600 });
  }
  return made;
}

export async function ipv6Loopback() {
  return new Promise((resolveV6) => {
    const server = createServer();
    server.once('error', () => resolveV6(false));
    server.listen(0, '::1', () => server.close(() => resolveV6(true)));
  });
}
