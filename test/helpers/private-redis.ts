import { ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './replica';
import { waitFor } from './wait';

/**
 * A throwaway Redis on its own port, for fault tests that kill it and bring it
 * back: empty by default, or, when `persistent`, with every write it
 * acknowledged (append-only file, fsync on every write, in its own folder).
 * Never touches the shared server.
 */
export class PrivateRedis {
  private process: ChildProcess | null = null;
  private exit: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly dataDir: string | null,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async create(options: { persistent?: boolean } = {}): Promise<PrivateRedis> {
    const dataDir = options.persistent ? mkdtempSync(join(tmpdir(), 'herald-redis-')) : null;
    const server = new PrivateRedis(await freePort(), dataDir);
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        ...['--port', String(this.port), '--bind', '127.0.0.1', '--save', ''],
        ...(this.dataDir
          ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.dataDir]
          : ['--appendonly', 'no']),
      ],
      { stdio: 'ignore' },
    );
    this.process = child;
    this.exit = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(`private Redis on :${this.port}`, async () => {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } finally {
        probe.disconnect();
      }
    });
  }

  /** SIGKILL: subscriptions are gone, and every key too unless persistent. */
  async kill(): Promise<void> {
    this.process?.kill('SIGKILL');
    await this.exit;
    this.process = null;
  }

  /** Kills it and removes its data folder. */
  async destroy(): Promise<void> {
    await this.kill();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** True between `start()` and `kill()`. */
  get running(): boolean {
    return this.process !== null;
  }

  /** Runs one command on a short-lived connection, e.g. `call('CLIENT', 'KILL', 'TYPE', 'pubsub')`. */
  async call(command: string, ...args: (string | number)[]): Promise<unknown> {
    const redis = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      return await redis.call(command, ...args);
    } finally {
      redis.disconnect();
    }
  }
}
