import 'reflect-metadata';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApp } from '../../apps/herald/src/create-app';
import { AppData, type AppDataOptions } from './app-data';
import type { TestDatabase } from './database';
import { DeliveryRow, deliveryOf, waitParked, waitRecorded } from './deliveries';
import { freePort } from './replica';

/**
 * The whole Herald app (AppModule with its middleware, gateway and workers, as main.ts builds it) running
 * inside the Jest process on a free port, against its own database and Redis key prefix. Its config is
 * parsed from the same record the replica processes get as their environment (`AppData.config`);
 * `process.env` is not touched. It logs to its own file, and to the run's output unless `quiet`.
 */
export class InProcessHerald {
  private constructor(
    readonly port: number,
    private readonly data: AppData,
    readonly app: NestFastifyApplication,
  ) {}

  get id(): string {
    return this.data.id;
  }

  get db(): TestDatabase {
    return this.data.db;
  }

  get redisPrefix(): string {
    return this.data.redisPrefix;
  }

  /** What the app has logged so far (JSON lines, at the LOG_LEVEL it was started with). */
  log(): string {
    return this.data.log();
  }

  /**
   * `env` goes on top of the test replicas' environment (replicaEnv): fast timings, test keys. `on`: an
   * existing database and Redis prefix to run on (a converted one), which `stop` then drops as its own;
   * `on.quiet`: its log to its file only (read it with `log()`).
   */
  static async start(
    label: string,
    env: Record<string, string> = {},
    on: AppDataOptions = {},
  ): Promise<InProcessHerald> {
    const port = await freePort();
    const data = await AppData.create(label, `${label}-inproc`, on);
    let app: NestFastifyApplication | undefined;
    try {
      const config = data.config(env, { PORT: String(port), HOST: '127.0.0.1' });
      app = await createApp(config, data.logStreams);
      await app.listen(config.port, config.host);
      return new InProcessHerald(port, data, app);
    } catch (error) {
      await app?.close().catch(() => undefined);
      await data.release();
      throw error;
    }
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Closes the app (sockets 1001, acks written, workers and connections closed), then drops its data. */
  async stop(): Promise<void> {
    try {
      await this.app.close();
    } finally {
      await this.data.release();
    }
  }

  deliveryOf(notificationId: string, userId: string): Promise<DeliveryRow | undefined> {
    return deliveryOf(this.db, notificationId, userId);
  }

  waitRecorded(notificationId: string, userId: string): Promise<DeliveryRow> {
    return waitRecorded(this.db, notificationId, userId);
  }

  waitParked(notificationId: string, userId: string, timeoutMs = 10_000): Promise<void> {
    return waitParked(this.db, notificationId, userId, timeoutMs);
  }
}
