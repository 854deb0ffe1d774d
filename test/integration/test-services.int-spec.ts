import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { freePort, isRoot, tcpAnswers } from '../../scripts/lib/services';
import { prepareTestServices, removeLeftovers, RUN_PREFIX, ensureTestTools } from '../../scripts/lib/test-services';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { repoRoot } from '../helpers/paths';

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one === 1;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

const portOf = (url: string): number => Number(new URL(url).port);

/** Addresses where nothing listens, as the defaults of a machine without servers. */
async function unreachableDefaults(): Promise<{ postgres: string; redis: string }> {
  return {
    postgres: `postgres://postgres@127.0.0.1:${await freePort()}/postgres`,
    redis: `redis://127.0.0.1:${await freePort()}`,
  };
}

describe("npm test's set-up step (scripts/lib/test-services.js)", () => {
  let tmp: string;
  let lines: string[];
  const log = (line: string): void => void lines.push(line);

  beforeEach(() => {
    // Its own temporary folder: the run's own private servers (npm test -- --private-services) live in tmpdir().
    tmp = mkdtempSync(join(tmpdir(), 'herald-setup-test-'));
    chmodSync(tmp, 0o755); // as root, the private PostgreSQL runs as the postgres user, who must reach its folder
    lines = [];
  });

  afterEach(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('starts private PostgreSQL and Redis when nothing answers at the defaults, and stops them', async () => {
    const defaults = await unreachableDefaults();
    const services = await prepareTestServices({ env: {}, defaults, tmp, log });
    const { TEST_POSTGRES_URL: pg, TEST_REDIS_URL: redis } = services.env;
    try {
      expect(lines).toEqual([
        `PostgreSQL: started a private one on :${portOf(pg)} (nothing answered at ${new URL(defaults.postgres).host})`,
        `Redis: started a private one on :${portOf(redis)} (nothing answered at ${new URL(defaults.redis).host})`,
      ]);
      expect(await postgresAnswers(pg)).toBe(true);
      expect(await redisAnswers(redis)).toBe(true);
      expect(readdirSync(tmp).filter((name) => name.startsWith(RUN_PREFIX))).toHaveLength(1);
    } finally {
      await services.stop();
    }
    expect(await tcpAnswers(portOf(pg))).toBe(false);
    expect(await tcpAnswers(portOf(redis))).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
    expect(lines.slice(2)).toEqual([
      `Redis: stopped the private one on :${portOf(redis)}`,
      `PostgreSQL: stopped the private one on :${portOf(pg)}`,
    ]);
  });

  it('uses servers that answer, starting nothing', async () => {
    const services = await prepareTestServices({
      env: {},
      defaults: { postgres: TEST_POSTGRES_URL, redis: TEST_REDIS_URL },
      tmp,
      log,
    });
    await services.stop();
    expect(services.env).toEqual({ TEST_POSTGRES_URL, TEST_REDIS_URL });
    expect(lines).toEqual([
      `PostgreSQL: reused ${new URL(TEST_POSTGRES_URL).host}`,
      `Redis: reused ${new URL(TEST_REDIS_URL).host}`,
    ]);
    expect(readdirSync(tmp)).toEqual([]);
    expect(await postgresAnswers(TEST_POSTGRES_URL)).toBe(true);
  });

  it('fails at once, naming it, when an explicitly set URL does not answer', async () => {
    const closed = await freePort();
    await expect(
      prepareTestServices({
        env: { TEST_POSTGRES_URL: `postgres://postgres@127.0.0.1:${closed}/postgres` },
        defaults: await unreachableDefaults(),
        tmp,
        log,
      }),
    ).rejects.toThrow(`TEST_POSTGRES_URL (127.0.0.1:${closed}) does not answer`);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('stops and removes what a killed run left behind', async () => {
    // A runner that starts private servers, says where, and is then killed before it can stop them.
    const script = `
      const { prepareTestServices } = require(${JSON.stringify(join(repoRoot(), 'scripts/lib/test-services.js'))});
      prepareTestServices({ env: {}, privateServices: true, tmp: ${JSON.stringify(tmp)} })
        .then((s) => { console.log(JSON.stringify(s.env)); setInterval(() => undefined, 1000); });`;
    const runner = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const firstLine = await new Promise<string>((resolve, reject) => {
      runner.once('exit', (code) => reject(new Error(`the runner exited (${code}) before its servers were up`)));
      createInterface({ input: runner.stdout }).once('line', resolve);
    });
    const env = JSON.parse(firstLine) as { TEST_POSTGRES_URL: string; TEST_REDIS_URL: string };
    const gone = new Promise((resolve) => runner.once('exit', resolve));
    runner.kill('SIGKILL');
    await gone;
    expect(await postgresAnswers(env.TEST_POSTGRES_URL)).toBe(true);
    expect(await redisAnswers(env.TEST_REDIS_URL)).toBe(true);

    await removeLeftovers({ tmp, log });
    expect(await tcpAnswers(portOf(env.TEST_POSTGRES_URL))).toBe(false);
    expect(await tcpAnswers(portOf(env.TEST_REDIS_URL))).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^removed what a killed test run left in .*\\(stopped PostgreSQL on :${portOf(env.TEST_POSTGRES_URL)}, ` +
            `Redis on :${portOf(env.TEST_REDIS_URL)}\\)$`,
        ),
      ),
    ]);
  }, 30_000);

  describe('with the tools and server binaries hidden from PATH', () => {
    let bin: string;
    beforeEach(() => {
      bin = mkdtempSync(join(tmp, 'bin-')); // PATH is this one folder, with nothing runnable unless a test puts it
    });

    it('names the packages to install when there is no apt-get', async () => {
      const why = isRoot() ? 'no apt-get here' : 'installing needs root';
      expect(() => ensureTestTools({ path: bin, log })).toThrow(
        `missing: nginx docker-compose chromium iproute2 redis-server redis-tools (${why}). Install them (Debian/Ubuntu: sudo apt-get install nginx docker-compose chromium iproute2 redis-server redis-tools;`,
      );
      await expect(
        prepareTestServices({ env: {}, defaults: await unreachableDefaults(), path: bin, tmp, log }),
      ).rejects.toThrow(`missing: postgresql (${why})`);
      expect(lines).toEqual([]);
      expect(readdirSync(tmp).filter((name) => name.startsWith(RUN_PREFIX))).toEqual([]);
    });

    it('reaches the apt-get install step as root (an apt-get that only records what it was asked)', async () => {
      const calls = join(tmp, 'apt-get-calls');
      writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "$@" >> ${calls}\n`);
      chmodSync(join(bin, 'apt-get'), 0o755);
      if (!isRoot()) {
        // Only root installs; anyone else is told what to install.
        expect(() => ensureTestTools({ path: bin, log })).toThrow('(installing needs root)');
        expect(existsSync(calls)).toBe(false);
        return;
      }
      expect(() => ensureTestTools({ path: bin, log })).toThrow('missing: nginx (still missing after apt-get install)');
      await expect(
        prepareTestServices({ env: {}, defaults: await unreachableDefaults(), path: bin, tmp, log }),
      ).rejects.toThrow('missing: postgresql (still missing after apt-get install)');
      expect(readFileSync(calls, 'utf8').split('\n')).toEqual([
        'update -qq',
        'install -y -qq --no-install-recommends nginx docker-compose chromium iproute2 redis-server redis-tools',
        'update -qq',
        'install -y -qq --no-install-recommends postgresql',
        '',
      ]);
      expect(lines).toEqual([
        'installing nginx docker-compose chromium iproute2 redis-server redis-tools with apt-get',
        'installing postgresql with apt-get',
      ]);
    });
  });
});
