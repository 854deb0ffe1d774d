#!/usr/bin/env node
// `npm test`: does its own set-up, then runs every test tier.
//   1. npm packages (npm ci) if missing;
//   2. Nginx, docker-compose and Chromium: installed with apt-get when missing (root on Debian/Ubuntu);
//   3. PostgreSQL and Redis: TEST_POSTGRES_URL / TEST_REDIS_URL when set, else the servers at 127.0.0.1:5432
//      and :6379 when they answer, else private ones for this run, stopped at the end (also on failure and
//      Ctrl-C). `npm test -- --private-services` always starts private ones;
//   4. the build, the console's component tests (Vitest via ng test), then Jest's unit, integration and
//      end-to-end projects. Other arguments after `--` go to Jest.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const say = (line) => process.stdout.write(`[test setup] ${line}\n`);

const args = process.argv.slice(2);
const privateServices = args.includes('--private-services');
const jestArgs = args.filter((a) => a !== '--private-services');

function fail(message) {
  process.stderr.write(`[test setup] ${message}\n`);
  process.exit(1);
}

if (!existsSync('node_modules/.package-lock.json')) {
  say('installing npm packages (npm ci)');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// Loaded after npm ci: the set-up probes the servers with the project's own pg and ioredis.
const { ensureTestTools, prepareTestServices } = require('./lib/test-services.js');

try {
  ensureTestTools({ log: say });
} catch (error) {
  fail(error.message);
}

let services;
try {
  services = await prepareTestServices({ privateServices, log: say });
} catch (error) {
  fail(error.message);
}
const env = { ...process.env, ...services.env };

let current = null;
let interrupted = null;
/** Ctrl-C or a kill: the running step gets the signal too (a terminal sends it to the whole group), then we stop. */
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    interrupted = signal;
    current?.kill(signal);
  });
}

function run(command, commandArgs) {
  return new Promise((resolve) => {
    current = spawn(command, commandArgs, { stdio: 'inherit', env });
    current.once('error', (error) => {
      process.stderr.write(`${command} could not run: ${error.message}\n`);
      resolve(1);
    });
    current.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  }).finally(() => (current = null));
}

const steps = [
  ['building', 'npm', ['run', 'build']],
  ["running the console's component and service tests (Vitest, through ng test)", 'npx', ['ng', 'test', 'admin']],
  ['running tests', 'npx', ['jest', '--runInBand', ...jestArgs]],
];
let status = 0;
for (const [what, command, commandArgs] of steps) {
  if (interrupted) break;
  process.stdout.write(`> ${what}\n`);
  status = await run(command, commandArgs);
  if (status !== 0) break;
}
await services.stop();
if (interrupted) {
  say(`${interrupted}: stopped`);
  process.exit(130);
}
process.exit(status);
