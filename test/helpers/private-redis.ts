import { ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './replica';
import { waitFor } from './wait';

/**
 * A throwaway Redis on its own port, keeping nothing on disk, for fault tests
 * that kill it and bring it back empty. Never touches the shared server.
 */
export class PrivateRedis {
  private process: ChildProcess | null = null;
  private exit: Promise<void> = Promise.resolve();

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async create(): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort());
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
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

  /** SIGKILL: every key, queue and subscription is gone. */
  async kill(): Promise<void> {
    this.process?.kill('SIGKILL');
    await this.exit;
    this.process = null;
  }
}
