'use strict';
// What `npm test` sets up before its tiers: the programs the tests drive (Nginx, docker-compose, Chromium),
// and PostgreSQL and Redis: the servers TEST_POSTGRES_URL / TEST_REDIS_URL name, else the ones answering at
// the default addresses, else private ones started for this run (data in a temporary folder) and stopped
// after it. A run killed before it could stop its servers leaves a folder that the next run clears.
const { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { PostgresServer, RedisServer, ensurePrograms, freePort, sameProcess, sleep, startTime } = require('./services');

const RUN_PREFIX = 'herald-test-services-';
const DEFAULTS = { postgres: 'postgres://postgres@127.0.0.1:5432/postgres', redis: 'redis://127.0.0.1:6379' };
// redis-server and redis-cli: the Redis Cluster tests start private clusters whatever Redis the tests share.
const TOOLS = ['nginx', 'docker-compose', 'chromium', 'ss', 'redis-server', 'redis-cli'];

/** Installs a missing Nginx, docker-compose or Chromium (root on Debian/Ubuntu), or throws naming them. */
function ensureTestTools({ path, log = () => undefined } = {}) {
  ensurePrograms(TOOLS, { path, log });
}

/** host:port of a URL, for the one-line report (never its credentials). */
function address(url) {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || (parsed.protocol.startsWith('redis') ? 6379 : 5432)}`;
}

/** null when PostgreSQL at `url` runs a query, else why not. */
async function postgresProblem(url) {
  const { Client } = require('pg');
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return error.message || String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** null when Redis at `url` answers PING, else why not. */
async function redisProblem(url) {
  const { Redis } = require('ioredis');
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (error) {
    return error.message || String(error);
  } finally {
    redis.disconnect();
  }
}

/** The run's record of what it started, so that a later run can stop it if this one is killed. */
function ownerFile(dir) {
  return join(dir, 'owner.json');
}

function readOwner(dir) {
  try {
    return JSON.parse(readFileSync(ownerFile(dir), 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Stops the servers of earlier runs that were killed before they could (their runner is gone) and removes
 * their folders. Folders of runs still going are left alone.
 */
async function removeLeftovers({ tmp = tmpdir(), log = () => undefined } = {}) {
  for (const name of readdirSync(tmp).filter((n) => n.startsWith(RUN_PREFIX))) {
    const dir = join(tmp, name);
    const owner = readOwner(dir);
    if (owner && sameProcess(owner.pid, owner.startTime)) continue; // a run in progress
    if (!owner && Date.now() - statSync(dir).mtimeMs < 60_000) continue; // a run writing its record right now
    const stopped = [];
    if (owner?.postgres) {
      new PostgresServer(owner.postgres).stopQuietly('immediate');
      stopped.push(`PostgreSQL on :${owner.postgres.port}`);
    }
    if (owner?.redis?.pid && sameProcess(owner.redis.pid, owner.redis.startTime)) {
      await terminate(owner.redis.pid);
      stopped.push(`Redis on :${owner.redis.port}`);
    }
    rmSync(dir, { recursive: true, force: true });
    log(`removed what a killed test run left in ${dir}${stopped.length ? ` (stopped ${stopped.join(', ')})` : ''}`);
  }
}

/** SIGTERM, then SIGKILL if it is still there after 5 s; resolves once it is gone. */
async function terminate(pid) {
  const begun = startTime(pid);
  const signal = (name) => {
    try {
      process.kill(pid, name);
    } catch {
      // gone already
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 5_000;
  while (sameProcess(pid, begun) && Date.now() < deadline) await sleep(50);
  if (sameProcess(pid, begun)) signal('SIGKILL');
  while (sameProcess(pid, begun)) await sleep(20);
}

/**
 * Chooses PostgreSQL and Redis for the run and starts private ones where needed; one line each says what it
 * did. Resolves to the URLs for the tests (TEST_POSTGRES_URL, TEST_REDIS_URL) and `stop()`, which stops what
 * this call started and removes its folder.
 *
 * options: env (where TEST_*_URL are read), privateServices (never reuse), defaults ({postgres, redis} URLs
 * probed when unset), path (replaces PATH when looking for server binaries and apt-get), tmp, log.
 */
async function prepareTestServices(options = {}) {
  const { env = process.env, privateServices = false, defaults = DEFAULTS, path, tmp = tmpdir() } = options;
  const log = options.log ?? (() => undefined);
  await removeLeftovers({ tmp, log });

  let dir = null;
  const owner = { pid: process.pid, startTime: startTime(process.pid), postgres: null, redis: null };
  const started = { postgres: null, redis: null };
  const record = () => writeFileSync(ownerFile(dir), JSON.stringify(owner, null, 2) + '\n');
  const runDir = () => {
    if (!dir) {
      dir = mkdtempSync(join(tmp, RUN_PREFIX));
      chmodSync(dir, 0o755); // the postgres user reaches its own folder inside
      record();
    }
    return dir;
  };

  const stop = async () => {
    if (started.redis) {
      await terminate(started.redis.pid);
      log(`Redis: stopped the private one on :${owner.redis.port}`);
      started.redis = null;
    }
    if (started.postgres) {
      await started.postgres.stopAsync('immediate').catch(() => started.postgres.stopQuietly('immediate'));
      log(`PostgreSQL: stopped the private one on :${started.postgres.port}`);
      started.postgres = null;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
  };

  const choose = async (name, variable, defaultUrl, problemOf, startPrivate) => {
    const explicit = env[variable];
    if (explicit) {
      const problem = await problemOf(explicit);
      if (problem) throw new Error(`${variable} (${address(explicit)}) does not answer: ${problem}`);
      log(`${name}: using ${variable} (${address(explicit)})`);
      return explicit;
    }
    let why = '--private-services';
    if (!privateServices) {
      const problem = await problemOf(defaultUrl);
      if (!problem) {
        log(`${name}: reused ${address(defaultUrl)}`);
        return defaultUrl;
      }
      why = `nothing answered at ${address(defaultUrl)}`;
    }
    const url = await startPrivate();
    log(`${name}: started a private one on :${new URL(url).port} (${why})`);
    return url;
  };

  try {
    const postgresUrl = await choose(
      'PostgreSQL',
      'TEST_POSTGRES_URL',
      defaults.postgres,
      postgresProblem,
      async () => {
        const { postgresql: bin } = ensurePrograms(['postgresql'], { path, log });
        const server = new PostgresServer({
          bin,
          home: join(runDir(), 'postgres'),
          port: await freePort(),
          fsync: false,
        });
        owner.postgres = { bin, home: server.home, port: server.port };
        record();
        server.init();
        started.postgres = server;
        await server.startAsync();
        return server.url;
      },
    );
    const redisUrl = await choose('Redis', 'TEST_REDIS_URL', defaults.redis, redisProblem, async () => {
      const { 'redis-server': binary } = ensurePrograms(['redis-server'], { path, log });
      const server = new RedisServer({ binary, port: await freePort() });
      runDir();
      // Its own process group: a Ctrl-C of the run reaches the tests, and the runner then stops Redis itself.
      const child = await server.spawn({ detached: true });
      child.unref();
      started.redis = child;
      owner.redis = { pid: child.pid, startTime: startTime(child.pid), port: server.port };
      record();
      return server.url;
    });
    return { env: { TEST_POSTGRES_URL: postgresUrl, TEST_REDIS_URL: redisUrl }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

module.exports = {
  DEFAULTS,
  RUN_PREFIX,
  TOOLS,
  ensureTestTools,
  postgresProblem,
  prepareTestServices,
  redisProblem,
  removeLeftovers,
};
