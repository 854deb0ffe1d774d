// `up`, `down` and `status`: the stack's commands.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { banner } from './banner.mjs';
import { fail, step } from './output.mjs';
import {
  isOurs,
  launch,
  readState,
  refuseLaunches,
  run,
  statePath,
  stopAll,
  waitUntil,
  writeState,
} from './processes.mjs';
import { ipv6Loopback, ownerOf, postgres, programs, redis, secrets } from './services.mjs';
import { ROOT, require } from './root.mjs';

const { alive, freePort, isRoot, portFree } = require('../lib/services.js');
/** A second Ctrl-C during start-up (or the copy npm forwards) is ignored. */
let aborting = false;

export async function up(options) {
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
    aborting = true;
    refuseLaunches(); // from here on, launch() refuses, so nothing starts behind stopAll's back
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

export async function down(options) {
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

export function status(options) {
  const state = readState(options);
  if (!state) {
    step('not running');
    return;
  }
  for (const p of state.processes) step(`${p.name.padEnd(9)} pid ${p.pid} ${isOurs(p) ? 'running' : 'gone'}`);
  step(`http://localhost:${state.port}`);
}
