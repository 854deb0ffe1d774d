#!/usr/bin/env node
// The whole Herald stack on a developer's machine, in one command:
//
//   npm run up                 install if needed, build, PostgreSQL + Redis (reused or private), migrations,
//                              two replicas and Nginx on http://localhost:8080; Ctrl-C stops what it started
//   npm run up -- --detach     the same, but returns once everything answers; `npm run down` stops it
//   npm run down               stops what the last `up` started, and nothing else
//
// Options (after `--`): --port 8080  --replicas 2  --database herald  --redis-prefix herald
//                       --private-services (never reuse the servers on 5432/6379)  --detach
//                       --postgres-url URL  --redis-url URL (use these servers instead)
//                       --redis-cluster (a private 3-master, 3-replica Redis Cluster instead of one Redis)
// Everything it makes lives in .stack/ : logs/, secrets.json, state.json, nginx/, and private
// postgres/, redis/ or redis-cluster/ data when those are started here.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let aborting = false;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const {
  PostgresServer,
  RedisServer,
  alive,
  ensurePrograms,
  freePort,
  isRoot,
  portFree,
  startTime,
  tcpAnswers,
} = require('./lib/services.js');
const { RedisClusterServers } = require('./lib/redis-cluster.js');
const SHARED_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

function parseArgs(argv) {
  if (['--help', '-h'].includes(argv[0])) usage(0); // `node scripts/stack.mjs --help`, as its errors suggest
  const options = {
    command: argv[0] ?? 'up',
    port: 8080,
    replicas: 2,
    database: 'herald',
    redisPrefix: 'herald',
    privateServices: false,
    postgresUrl: null,
    redisUrl: null,
    redisCluster: false,
    detach: false,
    dir: join(ROOT, '.stack'),
  };
  const rest = argv.slice(1);
  const value = (flag) => {
    const v = rest.shift();
    if (v === undefined) fail(`${flag} needs a value`);
    return v;
  };
  while (rest.length > 0) {
    const flag = rest.shift();
    switch (flag) {
      case '--port':
        options.port = integer(value(flag), flag, 1, 65535);
        break;
      case '--replicas':
        options.replicas = integer(value(flag), flag, 1, 16);
        break;
      case '--database':
        options.database = value(flag);
        if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.database))
          fail('--database must be a lowercase PostgreSQL name (letters, digits, _)');
        break;
      case '--redis-prefix':
        options.redisPrefix = value(flag);
        if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.redisPrefix))
          fail('--redis-prefix must be 1-64 letters, digits, _ . -');
        break;
      case '--private-services':
        options.privateServices = true;
        break;
      case '--postgres-url':
        options.postgresUrl = url(value(flag), flag, ['postgres:', 'postgresql:']);
        break;
      case '--redis-url':
        options.redisUrl = url(value(flag), flag, ['redis:']);
        break;
      case '--redis-cluster':
        options.redisCluster = true;
        break;
      case '--detach':
        options.detach = true;
        break;
      case '--help':
      case '-h':
        usage(0);
        break;
      default:
        fail(`unknown option ${flag}`, true);
    }
  }
  if (!['up', 'down', 'status'].includes(options.command)) fail(`unknown command ${options.command}`, true);
  if (options.redisCluster && options.redisUrl)
    fail('--redis-cluster starts a private cluster; it cannot use --redis-url too (pass one or the other)');
  return options;
}

function url(text, flag, protocols) {
  let parsed;
  try {
    parsed = new URL(text);
  } catch {
    fail(`${flag} must be a URL (${protocols[0]}//host:port/...)`);
  }
  if (!protocols.includes(parsed.protocol)) fail(`${flag} must start with ${protocols[0]}//`);
  return text;
}

function integer(text, flag, min, max) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fail(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

function usage(code) {
  process.stdout.write(
    [
      'usage: node scripts/stack.mjs up|down|status [options]   (npm run up / npm run down)',
      '  --port N             Nginx port (default 8080)',
      '  --replicas N         Herald replicas (default 2)',
      '  --database NAME      PostgreSQL database (default herald)',
      '  --redis-prefix P     prefix of every Redis key (default herald)',
      '  --private-services   start PostgreSQL and Redis in .stack/ even if servers answer on 5432/6379',
      '  --postgres-url URL   use this PostgreSQL server (its database NAME is created if missing)',
      '  --redis-url URL      use this Redis server',
      '  --redis-cluster      start a private Redis Cluster (3 masters + 3 replicas) in .stack/ instead of one Redis',
      '  --detach             return once the stack answers; stop it with npm run down',
      '',
    ].join('\n'),
  );
  process.exit(code);
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

const started = Date.now();
function step(message) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[stack ${seconds}s] ${message}\n`);
}

/** A failure while starting: `up` stops what it started, then reports it. */
class StackError extends Error {}

function fail(message, showUsage = false) {
  process.stderr.write(`[stack] ${message}\n`);
  if (showUsage) process.stderr.write('run `node scripts/stack.mjs --help` for the options\n');
  process.exit(1);
}

// ---------------------------------------------------------------------------
// Processes and state
// ---------------------------------------------------------------------------

function statePath(options) {
  return join(options.dir, 'state.json');
}

function readState(options) {
  try {
    return JSON.parse(readFileSync(statePath(options), 'utf8'));
  } catch {
    return null;
  }
}

function writeState(options, state) {
  writeFileSync(statePath(options), JSON.stringify(state, null, 2) + '\n');
}

/** The command line of a pid, to make sure a recorded pid still is the process the stack started. */
function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return null; // no /proc (macOS): the pid and start time are all there is
  }
}

function isOurs(entry) {
  if (!alive(entry.pid)) return false;
  if (entry.startTime && startTime(entry.pid) !== entry.startTime) return false; // pid reused
  const cmd = commandLine(entry.pid);
  return cmd === null || cmd.includes(entry.match);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: ROOT, ...options });
  if (result.error) throw new StackError(`${command} could not run: ${result.error.message}`);
  if (result.status !== 0) throw new StackError(`${command} ${args.join(' ')} failed with exit code ${result.status}`);
  return result;
}

/** Starts a long-lived process in its own process group, logging to a file; it outlives this script. */
function launch(name, command, args, { env = {}, logFile, match }) {
  if (aborting) throw new StackError(`not starting ${name}: the stack is being stopped`);
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  if (!child.pid) throw new StackError(`${name} did not start (${command}); see ${logFile}`);
  return { name, pid: child.pid, match: match ?? command, startTime: startTime(child.pid), logFile };
}

async function waitUntil(what, check, timeoutMs, logFile) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      const tail =
        logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(
        `${what} did not come up within ${timeoutMs / 1000} s${tail ? `; last lines of ${logFile}:\n${tail}` : ''}`,
      );
    }
    await sleep(200);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Services (their binaries, packages and private servers: scripts/lib/services.js)
// ---------------------------------------------------------------------------

/** The programs, installed with apt-get when missing (root on Debian/Ubuntu), else a StackError naming them. */
function programs(names) {
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
async function postgres(options, processes, taken) {
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
function ownerOf(path) {
  const uid = String(statSync(path).uid);
  const user = spawnSync('id', ['-nu', uid], { encoding: 'utf8' }).stdout.trim() || 'root';
  const group = spawnSync('id', ['-gn', uid], { encoding: 'utf8' }).stdout.trim() || user;
  return `${user} ${group}`;
}

/** Redis: --redis-url, else the one on 6379 if it answers PING, otherwise a private one (append-only, so jobs survive). */
async function redis(options, processes, taken) {
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
async function redisCluster(options, processes, taken) {
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

function secrets(options) {
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

async function ipv6Loopback() {
  return new Promise((resolveV6) => {
    const server = createServer();
    server.once('error', () => resolveV6(false));
    server.listen(0, '::1', () => server.close(() => resolveV6(true)));
  });
}

// ---------------------------------------------------------------------------
// up / down
// ---------------------------------------------------------------------------

async function up(options) {
  const previous = readState(options);
  if (previous) {
    const running = previous.processes.filter(isOurs);
    if (running.length > 0) {
      fail(
        `a stack is already running (${running.map((p) => `${p.name} pid ${p.pid}`).join(', ')}): ` +
          `stop it with npm run down first`,
      );
    }
    rmSync(statePath(options), { force: true });
  }
  mkdirSync(join(options.dir, 'logs'), { recursive: true });

  if (!(await portFree(options.port))) fail(`port ${options.port} is taken: stop what uses it, or pass --port N`);

  if (!existsSync(join(ROOT, 'node_modules', '.package-lock.json'))) {
    step('installing npm packages (npm ci)');
    run('npm', ['ci', '--no-audit', '--no-fund']);
  }
  step('building (npm run build)');
  run('npm', ['run', '--silent', 'build']);
  const { nginx } = programs(['nginx']);

  const processes = [];
  const state = { startedAt: new Date().toISOString(), port: options.port, processes };
  const taken = new Set([options.port]);
  // Signals during start-up: stop what was started. A second Ctrl-C (or the copy npm forwards) is ignored.
  const abort = async (error) => {
    if (aborting) return;
    aborting = true; // from here on, launch() refuses, so nothing starts behind stopAll's back
    process.stderr.write(`[stack] ${error instanceof Error ? error.message : String(error)}\n`);
    step('stopping what was started');
    await stopAll(processes);
    rmSync(statePath(options), { force: true });
    process.exit(1);
  };
  const onStartupSignal = (signal) => void abort(`${signal} while starting`);
  process.on('SIGINT', onStartupSignal);
  process.on('SIGTERM', onStartupSignal);

  try {
    const pg = await postgres(options, processes, taken);
    writeState(options, state);
    step(`PostgreSQL: ${pg.description}`);
    const rd = await redis(options, processes, taken);
    writeState(options, state);
    step(`Redis: ${rd.description}`);

    const keys = secrets(options);
    const env = {
      DATABASE_URL: pg.url,
      // One Redis or a cluster, never both (an empty REDIS_URL with REDIS_CLUSTER_NODES).
      REDIS_URL: rd.url ?? '',
      REDIS_CLUSTER_NODES: rd.nodes ?? '',
      HERALD_REDIS_PREFIX: options.redisPrefix,
      HERALD_API_KEYS: keys.apiKey,
      HERALD_JWT_SECRET: keys.jwtSecret,
      HERALD_ADMIN_PASSWORD: keys.adminPassword,
      // Replicas listen on loopback only: reachable through Nginx (or directly from this machine).
      HOST: '127.0.0.1',
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
      // A developer's machine: the demo page at /demo/ may mint tokens (never in production).
      HERALD_DEMO_TOKENS: 'true',
      LOG_FORMAT: 'json',
    };
    step('applying migrations');
    run(process.execPath, ['dist/apps/herald/database/migrate.js'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });

    const replicas = [];
    for (let i = 1; i <= options.replicas; i++) {
      const port = await freePort(3000 + i, taken);
      const id = `herald-${i}`;
      const logFile = join(options.dir, 'logs', `${id}.log`);
      const entry = launch(id, process.execPath, [join(ROOT, 'dist/apps/herald/main.js')], {
        env: { ...env, PORT: String(port), REPLICA_ID: id },
        logFile,
        match: join(ROOT, 'dist/apps/herald/main.js'),
      });
      processes.push(entry);
      writeState(options, state);
      replicas.push({ id, port, logFile });
    }
    step(`starting ${replicas.map((r) => `${r.id} on :${r.port}`).join(', ')}`);
    await Promise.all(
      replicas.map((r) =>
        waitUntil(
          `${r.id}`,
          async () => (await fetch(`http://127.0.0.1:${r.port}/health/ready`)).status === 200,
          60_000,
          r.logFile,
        ),
      ),
    );

    const render = require(join(ROOT, 'nginx', 'render.js'));
    const nginxDir = join(options.dir, 'nginx');
    mkdirSync(join(nginxDir, 'tmp'), { recursive: true });
    const builtConsole = join(ROOT, 'dist', 'admin', 'browser');
    const listen = [`127.0.0.1:${options.port}`, ...((await ipv6Loopback()) ? [`[::1]:${options.port}`] : [])];
    const configFile = join(nginxDir, 'nginx.conf');
    writeFileSync(
      configFile,
      render.render('local', {
        listen,
        upstreams: replicas.map((r) => `127.0.0.1:${r.port}`),
        // In step with the replicas, which read the same variable (or its default).
        ...(process.env.HERALD_MAX_BODY_BYTES ? { maxBodyBytes: Number(process.env.HERALD_MAX_BODY_BYTES) } : {}),
        // The same browser origins as the replicas: refused at the edge too.
        ...(process.env.HERALD_ALLOWED_ORIGINS
          ? { allowedOrigins: process.env.HERALD_ALLOWED_ORIGINS.split(',') }
          : {}),
        adminRoot: existsSync(join(builtConsole, 'index.html')) ? builtConsole : render.PLACEHOLDER_ROOT,
        dir: nginxDir,
        // As root, workers would be `nobody`, who may not reach a project under /root: run them as its owner.
        ...(isRoot() ? { user: ownerOf(ROOT) } : {}),
      }),
    );
    const check = spawnSync(nginx, ['-t', '-c', configFile], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`nginx -t refused ${configFile}:\n${check.stderr}`);
    const nginxLog = join(options.dir, 'logs', 'nginx.log');
    processes.push(
      launch('nginx', nginx, ['-c', configFile, '-g', 'daemon off;'], { logFile: nginxLog, match: configFile }),
    );
    writeState(options, state);
    step(`starting Nginx on http://localhost:${options.port}`);
    await waitUntil(
      'Nginx',
      async () => (await fetch(`http://127.0.0.1:${options.port}/health/ready`)).status === 200,
      20_000,
      nginxLog,
    );
    banner(options, keys, replicas, pg, rd);
  } catch (error) {
    await abort(error);
    return;
  }

  process.off('SIGINT', onStartupSignal);
  process.off('SIGTERM', onStartupSignal);
  if (options.detach) {
    step('detached: the stack keeps running; stop it with npm run down');
    process.exit(0);
  }
  // Foreground: watch the children, stop everything on Ctrl-C.
  const watch = setInterval(() => {
    for (const p of processes) {
      if (!p.reported && !alive(p.pid)) {
        p.reported = true;
        step(`${p.name} (pid ${p.pid}) has exited; see ${relative(process.cwd(), p.logFile)}`);
      }
    }
  }, 1000);
  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return; // Ctrl-C twice, or npm forwarding the terminal's SIGINT: one stop is enough
    stopping = true;
    clearInterval(watch);
    process.stdout.write('\n');
    step(`${signal}: stopping the stack`);
    await stopAll(processes);
    rmSync(statePath(options), { force: true });
    step('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

function banner(options, keys, replicas, pg, rd) {
  const base = `http://localhost:${options.port}`;
  const logs = relative(process.cwd(), join(options.dir, 'logs')) || '.';
  const body = JSON.stringify({ to: { users: ['alice'] }, event: 'greeting', payload: { text: 'Hello, Alice!' } });
  const lines = [
    '',
    `Herald is up at ${base}`,
    '',
    `  REST API       ${base}/v1/`,
    `  WebSocket      ws://localhost:${options.port}/ws`,
    `  Health         ${base}/health/ready`,
    `  Admin console  ${base}/admin/`,
    `  Demo inbox     ${base}/demo/ (an end-user page: pick a user, publish to it, watch it arrive)`,
    ...replicas.map((r) => `  Replica        ${r.id} http://127.0.0.1:${r.port} (direct, not through Nginx)`),
    `  PostgreSQL     ${pg.description}`,
    `  Redis          ${rd.description}, key prefix ${options.redisPrefix}`,
    `  Logs           ${logs}/ (one file per process)`,
    '',
    `API key (publisher): ${keys.apiKey}`,
    `Admin password (console and /admin/api/): ${keys.adminPassword}`,
    '',
    'Connect as alice (prints each notification and acks it):',
    `  npm run connect -- alice`,
    '',
    'Publish a notification to alice:',
    `  curl -sS -X POST ${base}/v1/notifications -H 'Authorization: Bearer ${keys.apiKey}' -H 'Content-Type: application/json' -d '${body}'`,
    '',
    options.detach ? 'Stop: npm run down' : 'Stop: Ctrl-C here (or npm run down from another terminal)',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/**
 * Stops the replicas together first (they close their sockets with 1001 and finish in-flight work), then
 * Nginx, Redis and PostgreSQL; politely, waiting until each is gone.
 */
async function stopAll(processes) {
  const tier = (p) => (p.name.startsWith('herald') ? 0 : p.name === 'nginx' ? 1 : p.name.startsWith('redis') ? 2 : 3);
  for (const level of [0, 1, 2, 3]) {
    await Promise.all(processes.filter((p) => tier(p) === level).map(stopOne));
  }
}

async function stopOne(p) {
  if (!isOurs(p)) return;
  if (p.stop?.pgCtl) {
    const [cmd, args] = p.stop.pgCtl;
    spawnSync(cmd, args, { stdio: 'ignore' });
  } else {
    // Nginx: SIGQUIT finishes open requests; replicas: SIGTERM drains; Redis: SIGTERM syncs its append-only file.
    signal(p.pid, p.name === 'nginx' ? 'SIGQUIT' : 'SIGTERM');
  }
  // Longer than the replicas' shutdown grace and Nginx's worker_shutdown_timeout (10 s each).
  const deadline = Date.now() + 20_000;
  while (alive(p.pid) && Date.now() < deadline) await sleep(100);
  if (alive(p.pid)) {
    step(`${p.name} (pid ${p.pid}) did not stop in time: killing it`);
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      signal(p.pid, 'SIGKILL');
    }
    const killDeadline = Date.now() + 5_000;
    while (alive(p.pid) && Date.now() < killDeadline) await sleep(50);
  }
  step(`stopped ${p.name} (pid ${p.pid})`);
}

function signal(pid, name) {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

async function down(options) {
  const state = readState(options);
  if (!state) {
    step(`nothing to stop: no ${relative(process.cwd(), statePath(options))}`);
    return;
  }
  const running = state.processes.filter(isOurs);
  if (running.length === 0) step('nothing was running any more');
  await stopAll(state.processes);
  rmSync(statePath(options), { force: true });
  step('stopped');
}

function status(options) {
  const state = readState(options);
  if (!state) {
    step('not running');
    return;
  }
  for (const p of state.processes) step(`${p.name.padEnd(9)} pid ${p.pid} ${isOurs(p) ? 'running' : 'gone'}`);
  step(`http://localhost:${state.port}`);
}

const options = parseArgs(process.argv.slice(2));
try {
  if (options.command === 'up') await up(options);
  else if (options.command === 'down') await down(options);
  else status(options);
} catch (error) {
  if (error instanceof StackError) fail(error.message);
  throw error;
}
