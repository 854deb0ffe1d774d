import { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrograms, freePort, RedisServer } from '../../scripts/lib/services';

/**
 * A throwaway Redis on its own port (scripts/lib/services.js runs it), for
 * fault tests that kill it and bring it back: empty by default, or, when `persistent`, with every write it
 * acknowledged (append-only file, fsync on every write, in its own folder).
 * Never touches the shared server.
 */
export class PrivateRedis {
  private process: ChildProcess | null = null;
  private exit: Promise<void> = Promise.resolve();

  private constructor(private readonly server: RedisServer) {}

  get port(): number {
    return this.server.port;
  }

  get url(): string {
    return this.server.url;
  }

  static async create(options: { persistent?: boolean } = {}): Promise<PrivateRedis> {
    const { 'redis-server': binary } = ensurePrograms(['redis-server']);
    const dir = options.persistent ? mkdtempSync(join(tmpdir(), 'herald-redis-')) : null;
    const redis = new PrivateRedis(new RedisServer({ binary, port: await freePort(), dir, fsyncAlways: true }));
    await redis.start();
    return redis;
  }

  async start(): Promise<void> {
    const child = await this.server.spawn();
    this.process = child;
    this.exit = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  /** SIGKILL: subscriptions are gone, and every key too unless persistent. */
  async kill(): Promise<void> {
    this.process?.kill('SIGKILL');
    await this.exit;
    this.process = null;
  }

  /** SIGSTOP: it holds every connection and answers nothing, as a Redis stalled by a long command or a swap. */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  /** SIGCONT after `pause`. */
  resume(): void {
    this.process?.kill('SIGCONT');
  }

  /** Kills it and removes its data folder. */
  async destroy(): Promise<void> {
    await this.kill();
    if (this.server.dir) rmSync(this.server.dir, { recursive: true, force: true });
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
