'use strict';
// Private PostgreSQL and Redis servers, and the Debian packages behind them and the test tools: the one
// implementation that `npm test`, `npm run up -- --private-services` and the fault tests share.
// CommonJS with types in services.d.ts, so the .mjs scripts and the TypeScript tests both load it unbuilt.
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} = require('node:fs');
const { connect: tcpConnect, createServer } = require('node:net');
const { delimiter, dirname, join } = require('node:path');

const isRoot = () => process.getuid?.() === 0;

/** Folders searched for a program: PATH, then the sbin folders a non-root PATH leaves out (nginx lives there). */
function searchDirs(path) {
  const dirs = (path ?? process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return path === undefined ? [...dirs, '/usr/sbin', '/usr/local/sbin'] : dirs;
}

/** The absolute path of an executable program, or null. `path` replaces PATH (and the sbin fallbacks). */
function findProgram(name, path) {
  for (const dir of searchDirs(path)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * PostgreSQL's server binaries (initdb, pg_ctl): Debian keeps them per version under /usr/lib/postgresql,
 * behind postgresql-common's wrappers on PATH; elsewhere initdb is on PATH.
 */
function findPostgresBin(path) {
  const debian = '/usr/lib/postgresql';
  if (findProgram('pg_ctlcluster', path) && existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => existsSync(join(debian, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length > 0) return join(debian, versions[0], 'bin');
  }
  const initdb = findProgram('initdb', path);
  return initdb ? dirname(initdb) : null;
}

/** What each program comes in, on Debian/Ubuntu, and how to find it. */
const PROGRAMS = {
  postgresql: { packages: ['postgresql'], find: findPostgresBin },
  'redis-server': { packages: ['redis-server'], find: (path) => findProgram('redis-server', path) },
  // redis-cli --cluster creates and reshards the private Redis Clusters (scripts/lib/redis-cluster.js).
  'redis-cli': { packages: ['redis-tools'], find: (path) => findProgram('redis-cli', path) },
  nginx: { packages: ['nginx'], find: (path) => findProgram('nginx', path) },
  'docker-compose': { packages: ['docker-compose'], find: (path) => findProgram('docker-compose', path) },
  chromium: { packages: ['chromium'], find: (path) => findProgram('chromium', path) },
  // ss reads the listen backlog of a replica and of Nginx (front-door test).
  ss: { packages: ['iproute2'], find: (path) => findProgram('ss', path) },
};

const OTHER_SYSTEMS = 'Fedora: sudo dnf install …, macOS: brew install …';

class MissingPackagesError extends Error {
  constructor(packages, why) {
    super(
      `missing: ${packages.join(' ')}${why ? ` (${why})` : ''}. Install them ` +
        `(Debian/Ubuntu: sudo apt-get install ${packages.join(' ')}; ${OTHER_SYSTEMS}) and run again.`,
    );
    this.name = 'MissingPackagesError';
    this.packages = packages;
  }
}

/**
 * Makes sure each named program is installed: as root on Debian/Ubuntu, apt-get installs what is missing
 * (one line says what); elsewhere a MissingPackagesError names the packages. Returns where each one is.
 */
function ensurePrograms(names, { path, log = () => undefined } = {}) {
  const found = {};
  const missing = [];
  for (const name of names) {
    found[name] = PROGRAMS[name].find(path);
    if (!found[name]) missing.push(name);
  }
  if (missing.length === 0) return found;
  const packages = missing.flatMap((name) => PROGRAMS[name].packages);
  const aptGet = isRoot() ? findProgram('apt-get', path) : null;
  if (!aptGet) throw new MissingPackagesError(packages, isRoot() ? 'no apt-get here' : 'installing needs root');
  log(`installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', ...(path === undefined ? {} : { PATH: path }) };
  const aptRun = (args) => {
    const result = spawnSync(aptGet, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (result.status !== 0)
      throw new Error(`apt-get ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
  };
  aptRun(['update', '-qq']);
  aptRun(['install', '-y', '-qq', '--no-install-recommends', ...packages]);
  for (const name of missing) {
    found[name] = PROGRAMS[name].find(path);
    if (!found[name]) throw new MissingPackagesError(PROGRAMS[name].packages, 'still missing after apt-get install');
  }
  // Debian's nginx package starts a system Nginx on port 80; Herald runs its own.
  if (missing.includes('nginx') && existsSync('/run/nginx.pid'))
    spawnSync(found.nginx, ['-s', 'quit'], { stdio: 'ignore' });
  return found;
}

function portFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A port nothing listens on: the first free one from `start` when given, else one the kernel picks. */
async function freePort(start, taken = new Set()) {
  if (start === undefined) {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
  }
  for (let port = start; port < start + 200; port++) {
    if (!taken.has(port) && (await portFree(port))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port from ${start} to ${start + 199}`);
}

/** True when something at host:port accepts a connection and, given a probe, answers with `expect`. */
function tcpAnswers(port, host = '127.0.0.1', probe, expect) {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host });
    let data = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => (probe ? socket.write(probe) : done(true)));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes(expect)) done(true);
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 100 ms until true, or throws naming `what` after `timeoutMs`. */
async function waitUntil(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

/** /proc/<pid>/stat fields after the command name: [state, ppid, ...]; null without /proc or the process. */
function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** When the process started (clock ticks since boot), to tell it from a later one that got the same pid. */
function startTime(pid) {
  return procStat(pid)?.[19] ?? null;
}

/** Running and not a zombie (one that has exited and waits for its parent to collect it). */
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code !== 'EPERM') return false;
  }
  return procStat(pid)?.[0] !== 'Z';
}

/** The same process as recorded: alive, and started when it was (its pid was not reused since). */
function sameProcess(pid, recordedStart) {
  return alive(pid) && (recordedStart == null || startTime(pid) === recordedStart);
}

function pgOwner() {
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return [id('-u'), id('-g')];
}

/**
 * A PostgreSQL server of our own: data in `home`/data, the socket in `home`, listening on 127.0.0.1:`port`
 * with trust auth for the `postgres` user. As root, initdb and the server run as the postgres user (they
 * refuse root), so `home` must be a folder that user can reach. Nothing here touches a shared cluster.
 */
class PostgresServer {
  constructor({ bin, home, port, logFile, fsync = true }) {
    this.bin = bin;
    this.home = home;
    this.port = port;
    this.logFile = logFile ?? join(home, 'server.log');
    this.fsync = fsync;
  }

  get dataDir() {
    return join(this.home, 'data');
  }

  get url() {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** [command, args] running a server tool, as the postgres user when we are root. */
  command(tool, args) {
    const path = join(this.bin, tool);
    return isRoot() ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
  }

  /** Creates `home` (owned by postgres when root) and runs initdb unless the data folder already has a cluster. */
  init() {
    mkdirSync(this.home, { recursive: true });
    chmodSync(this.home, 0o700);
    if (isRoot()) chownSync(this.home, ...pgOwner());
    if (isRoot() && !existsSync(this.logFile)) {
      mkdirSync(dirname(this.logFile), { recursive: true });
      writeFileSync(this.logFile, '');
      chownSync(this.logFile, ...pgOwner());
    }
    if (existsSync(join(this.dataDir, 'PG_VERSION'))) return;
    this.runSync('initdb', ['-D', this.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
  }

  startArgs() {
    // fsync=off keeps every commit through a crash of the server (the OS still has it), not of the machine.
    const fsync = this.fsync ? '' : ' -c fsync=off';
    const options = `-p ${this.port} -k ${this.home} -c listen_addresses=127.0.0.1${fsync}`;
    return ['-D', this.dataDir, '-l', this.logFile, '-o', options, '-w', '-t', '60', 'start'];
  }

  /** `immediate` is like a crash (no clean shutdown of sessions); `fast` rolls back and checkpoints. */
  stopArgs(mode = 'fast') {
    return ['-D', this.dataDir, '-m', mode, '-w', 'stop'];
  }

  start() {
    this.runSync('pg_ctl', this.startArgs());
  }

  stop(mode = 'fast') {
    this.runSync('pg_ctl', this.stopArgs(mode));
  }

  /** `start()` without blocking the event loop while pg_ctl runs, so the caller's sockets keep being served. */
  startAsync() {
    return this.runAsync('pg_ctl', this.startArgs());
  }

  stopAsync(mode = 'fast') {
    return this.runAsync('pg_ctl', this.stopArgs(mode));
  }

  /** Stops it if it runs; never throws (for clean-up paths). */
  stopQuietly(mode = 'immediate') {
    if (!existsSync(join(this.dataDir, 'postmaster.pid'))) return;
    spawnSync(...this.command('pg_ctl', this.stopArgs(mode)), { stdio: 'ignore' });
  }

  /** The postmaster's pid while it runs, else null. */
  pid() {
    try {
      return Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) || null;
    } catch {
      return null;
    }
  }

  runSync(tool, args) {
    const [cmd, argv] = this.command(tool, args);
    const result = spawnSync(cmd, argv, { encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`${tool} failed (${result.status ?? result.signal}): ${result.stderr || result.stdout}`);
    }
  }

  runAsync(tool, args) {
    const [cmd, argv] = this.command(tool, args);
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk.toString()));
      child.stderr.on('data', (chunk) => (output += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${tool} failed (${code}): ${output}`))));
    });
  }
}

/**
 * A Redis server of our own on 127.0.0.1:`port`. With a `dir`, it keeps an append-only file there
 * (`appendfsync always` when `fsyncAlways`, so every acknowledged write survives a SIGKILL); without one
 * it keeps nothing.
 */
class RedisServer {
  constructor({ binary, port, dir = null, fsyncAlways = false }) {
    this.binary = binary;
    this.port = port;
    this.dir = dir;
    this.fsyncAlways = fsyncAlways;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  args() {
    return [
      ...['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--daemonize', 'no'],
      ...(this.dir
        ? ['--dir', this.dir, '--appendonly', 'yes', ...(this.fsyncAlways ? ['--appendfsync', 'always'] : [])]
        : ['--appendonly', 'no']),
    ];
  }

  /** Starts the server process (`spawn` options pass through: detached, stdio) and waits until it answers PING. */
  async spawn(options = {}) {
    if (this.dir) mkdirSync(this.dir, { recursive: true });
    const child = spawn(this.binary, this.args(), { stdio: 'ignore', ...options });
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
    child.once('error', () => undefined);
    await Promise.race([
      waitUntil(`Redis on 127.0.0.1:${this.port}`, () => this.answers(), 15_000),
      exited.then((how) => {
        throw new Error(`redis-server on :${this.port} exited (${how}) before it answered`);
      }),
    ]);
    return child;
  }

  answers() {
    return tcpAnswers(this.port, '127.0.0.1', 'PING\r\n', '+PONG');
  }
}

module.exports = {
  alive,
  sameProcess,
  startTime,
  MissingPackagesError,
  PostgresServer,
  RedisServer,
  ensurePrograms,
  findProgram,
  findPostgresBin,
  freePort,
  isRoot,
  portFree,
  tcpAnswers,
  waitUntil,
  sleep,
};
