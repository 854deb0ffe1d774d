import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { Redis } from 'ioredis';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { repoRoot } from '../helpers/paths';
import { deleteRedisPrefix } from '../helpers/redis';
import { freePort } from '../helpers/replica';
import { waitFor } from '../helpers/wait';

interface StackState {
  port: number;
  processes: { name: string; pid: number }[];
}

/** A fresh clone of the working tree: every tracked or new file, nothing ignored (no node_modules, no dist). */
function freshClone(): string {
  const root = repoRoot();
  const clone = mkdtempSync(join(tmpdir(), 'herald-clone-'));
  chmodSync(clone, 0o755);
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root })
    .toString()
    .split('\0')
    .filter((f) => f && existsSync(join(root, f)));
  for (const file of files) {
    mkdirSync(dirname(join(clone, file)), { recursive: true });
    copyFileSync(join(root, file), join(clone, file));
  }
  return clone;
}

/** Running, and not a zombie (a detached process that exited waits to be collected by PID 1). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Runs a command in the background, collecting its output. */
function background(command: string, args: string[], cwd: string): { child: ChildProcess; output: () => string } {
  // Its own process group, so a signal reaches the whole `sh -c npm run ...` chain, as Ctrl-C would.
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

function interrupt(child: ChildProcess): void {
  if (!child.pid || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGINT');
  } catch {
    // the group is gone already
  }
}

/** Waits for `text` in the output; fails at once, with the output, if the process ends first. */
async function untilOutput(
  proc: { child: ChildProcess; output: () => string },
  text: string,
  timeoutMs: number,
): Promise<void> {
  const outcome = await waitFor(
    `"${text}" in the output`,
    () => {
      if (proc.output().includes(text)) return 'seen';
      return proc.child.exitCode !== null || proc.child.signalCode !== null ? 'ended' : false;
    },
    timeoutMs,
    200,
  ).catch((error: Error) => {
    throw new Error(`${error.message}:\n${proc.output()}`);
  });
  if (outcome === 'ended') {
    throw new Error(`ended (${proc.child.exitCode ?? proc.child.signalCode}) before "${text}":\n${proc.output()}`);
  }
}

/** How it ended: an exit code, or the signal that ended it. */
function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('The one-command stack, from a fresh clone', () => {
  let clone: string;
  const suffix = randomBytes(4).toString('hex');
  const database = `herald_stack_${suffix}`;
  const redisPrefix = `herald-stack-${suffix}`;

  beforeAll(() => {
    clone = freshClone();
  });

  afterAll(async () => {
    if (clone) spawnSync(process.execPath, ['scripts/stack.mjs', 'down'], { cwd: clone, stdio: 'ignore' });
    const admin = new Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    await deleteRedisPrefix(redisPrefix);
    if (clone) rmSync(clone, { recursive: true, force: true });
  });

  it("npm run up installs, builds and answers through Nginx; the banner's curl and connect commands work; npm run down leaves nothing", async () => {
    const port = await freePort();
    const up = spawnSync(
      'npm',
      [
        ...[
          'run',
          'up',
          '--',
          '--detach',
          '--port',
          String(port),
          '--database',
          database,
          '--redis-prefix',
          redisPrefix,
        ],
        // The servers this run uses (reused, or private ones `npm test` started), not whatever runs on 5432/6379.
        ...['--postgres-url', TEST_POSTGRES_URL, '--redis-url', TEST_REDIS_URL],
      ],
      { cwd: clone, encoding: 'utf8', timeout: 480_000, env: { ...process.env, CI: 'true' } },
    );
    const upOutput = `${up.stdout}${up.stderr}`;
    expect({ status: up.status, output: up.status === 0 ? '' : upOutput }).toEqual({ status: 0, output: '' });
    expect(upOutput).toContain('installing npm packages (npm ci)');
    expect(upOutput).toContain(`PostgreSQL: reused the server on ${new URL(TEST_POSTGRES_URL).host}`);
    expect(upOutput).toContain(`Herald is up at http://localhost:${port}`);

    const state = JSON.parse(readFileSync(join(clone, '.stack', 'state.json'), 'utf8')) as StackState;
    expect(state.processes.map((p) => p.name).sort()).toEqual(['herald-1', 'herald-2', 'nginx']);
    for (const p of state.processes) expect(alive(p.pid)).toBe(true);
    for (const name of ['herald-1', 'herald-2', 'nginx']) {
      expect(existsSync(join(clone, '.stack', 'logs', `${name}.log`))).toBe(true);
    }

    const ready = await fetch(`http://localhost:${port}/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('x-herald-replica')).toMatch(/^herald-[12]$/);

    // The banner's own commands, pasted as printed.
    const lines = upOutput.split('\n').map((l) => l.trim());
    const connectLine = lines.find((l) => l.startsWith('npm run connect'))!;
    const curlLine = lines.find((l) => l.startsWith('curl '))!;
    expect(connectLine).toBe('npm run connect -- alice');
    const connect = background('sh', ['-c', connectLine], clone);
    try {
      await waitFor('the connect command to be welcomed', () => connect.output().includes('welcome:'), 20_000);
      const published = JSON.parse(execFileSync('sh', ['-c', curlLine], { cwd: clone }).toString()) as { id: string };
      expect(published.id).toMatch(/^[0-9a-f-]{36}$/);
      await waitFor(
        'the notification and its ack',
        () => connect.output().includes(`acked ${published.id} (ok)`),
        10_000,
      );
      expect(connect.output()).toContain(`notification ${published.id} event=greeting`);
    } finally {
      interrupt(connect.child);
      await exited(connect.child);
    }

    // No process of the stack logged the API key or alice's token.
    const apiKey = /API key \(publisher\): (\S+)/.exec(upOutput)![1]!;
    for (const dir of ['logs', 'nginx']) {
      for (const file of readdirSync(join(clone, '.stack', dir)).filter((f) => f.endsWith('.log'))) {
        const text = readFileSync(join(clone, '.stack', dir, file), 'utf8');
        expect({ file, apiKey: text.includes(apiKey), token: /eyJ[\w-]{8,}\.eyJ/.test(text) }).toEqual({
          file,
          apiKey: false,
          token: false,
        });
      }
    }

    const down = spawnSync('npm', ['run', 'down'], { cwd: clone, encoding: 'utf8', timeout: 60_000 });
    expect(down.status).toBe(0);
    for (const p of state.processes) expect(alive(p.pid)).toBe(false);
    expect(existsSync(join(clone, '.stack', 'state.json'))).toBe(false);
    await expect(fetch(`http://localhost:${port}/health/ready`)).rejects.toThrow();
  }, 600_000);

  it('with --private-services it runs its own PostgreSQL and Redis, and Ctrl-C stops all it started and nothing else', async () => {
    const port = await freePort();
    // Through npm, as a developer runs it: Ctrl-C reaches npm, sh and node together (the whole group).
    const up = background('npm', ['run', 'up', '--', '--private-services', '--port', String(port)], clone);
    try {
      await untilOutput(up, 'Herald is up', 180_000);
      expect(up.output()).toMatch(/PostgreSQL: private server on 127\.0\.0\.1:\d+/);
      expect(up.output()).toMatch(/Redis: private server on 127\.0\.0\.1:\d+/);
      const state = JSON.parse(readFileSync(join(clone, '.stack', 'state.json'), 'utf8')) as StackState;
      expect(state.processes.map((p) => p.name).sort()).toEqual(['herald-1', 'herald-2', 'nginx', 'postgres', 'redis']);

      const { apiKey } = JSON.parse(readFileSync(join(clone, '.stack', 'secrets.json'), 'utf8')) as { apiKey: string };
      const published = await fetch(`http://127.0.0.1:${port}/v1/notifications`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: { users: ['bob'] }, event: 'private', payload: {} }),
      });
      expect(published.status).toBe(202);

      interrupt(up.child);
      const ended = await exited(up.child);
      // npm re-raises the SIGINT it got once its script is done; the script itself finished its stop.
      expect(ended.code === 0 || ended.signal === 'SIGINT').toBe(true);
      expect(up.output()).toMatch(/\] stopped\n/);
      for (const p of state.processes) expect(alive(p.pid)).toBe(false);
      expect(up.output()).toContain('stopped postgres');

      // The shared servers it did not start are untouched.
      const pg = new Client({ connectionString: TEST_POSTGRES_URL });
      await pg.connect();
      expect((await pg.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
      await pg.end();
      const redis = new Redis(TEST_REDIS_URL);
      expect(await redis.ping()).toBe('PONG');
      redis.disconnect();
    } finally {
      if (up.child.exitCode === null) {
        interrupt(up.child);
        await exited(up.child);
      }
    }
  }, 300_000);
});
