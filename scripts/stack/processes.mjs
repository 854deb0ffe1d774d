// The processes the stack starts (each in its own group, logging to a file), its state file, and stopping them.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StackError, step } from './output.mjs';
import { ROOT, require } from './root.mjs';

const { alive, startTime } = require('../lib/services.js');

/** Set once `up` is stopping what it started: nothing starts behind `stopAll`'s back. */
let refusing = false;
export function refuseLaunches() {
  refusing = true;
}

export function statePath(options) {
  return join(options.dir, 'state.json');
}

export function readState(options) {
  try {
    return JSON.parse(readFileSync(statePath(options), 'utf8'));
  } catch {
    return null;
  }
}

export function writeState(options, state) {
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

export function isOurs(entry) {
  if (!alive(entry.pid)) return false;
  if (entry.startTime && startTime(entry.pid) !== entry.startTime) return false; // pid reused
  const cmd = commandLine(entry.pid);
  return cmd === null || cmd.includes(entry.match);
}

export function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: ROOT, ...options });
  if (result.error) throw new StackError(`${command} could not run: ${result.error.message}`);
  if (result.status !== 0) throw new StackError(`${command} ${args.join(' ')} failed with exit code ${result.status}`);
  return result;
}

/** Starts a long-lived process in its own process group, logging to a file; it outlives this script. */
export function launch(name, command, args, { env = {}, logFile, match }) {
  if (refusing) throw new StackError(`not starting ${name}: the stack is being stopped`);
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

export async function waitUntil(what, check, timeoutMs, logFile) {
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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops the replicas together first (they close their sockets with 1001 and finish in-flight work), then
 * Nginx, Redis and PostgreSQL; politely, waiting until each is gone.
 */
export async function stopAll(processes) {
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
