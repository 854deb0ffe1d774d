import 'reflect-metadata';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { parseConfig } from '../../apps/herald/src/config/config.schema';
import { createApp } from '../../apps/herald/src/create-app';
import { copyAppLog, stopCopyingAppLog } from './app-log';
import { createTestDatabase, TestDatabase } from './database';
import { DeliveryRow, deliveryOf, waitParked, waitRecorded } from './deliveries';
import { deleteRedisPrefix, testRedisPrefix } from './redis';
import { freePort, replicaEnv } from './replica';

/**
 * The whole Herald app (AppModule with its middleware, gateway and workers, as main.ts builds it) running
 * inside the Jest process on a free port, against its own database and Redis key prefix. Its config is
 * parsed from the same record the replica processes get as their environment; `process.env` is not touched.
 */
export class InProcessHerald {
  private constructor(
    readonly id: string,
    readonly port: number,
    readonly db: TestDatabase,
    readonly redisPrefix: string,
    readonly app: NestFastifyApplication,
  ) {}

  /**
   * `env` goes on top of the test replicas' environment (replicaEnv): fast timings, test keys. `on`: an
   * existing database and Redis prefix to run on (a converted one), which `stop` then drops as its own.
   */
  static async start(
    label: string,
    env: Record<string, string> = {},
    on: { db?: TestDatabase; redisPrefix?: string } = {},
  ): Promise<InProcessHerald> {
    const db = on.db ?? (await createTestDatabase(label));
    const redisPrefix = on.redisPrefix ?? testRedisPrefix(label);
    const port = await freePort();
    const id = `${label}-inproc`;
    copyAppLog(id, label);
    let app: NestFastifyApplication | undefined;
    try {
      // Warnings and errors only: the app logs to the Jest process's stdout.
      const config = parseConfig({
        ...replicaEnv({ databaseUrl: db.url, redisPrefix, LOG_LEVEL: 'warn', ...env }),
        PORT: String(port),
        HOST: '127.0.0.1',
        REPLICA_ID: id,
      });
      app = await createApp(config);
      await app.listen(config.port, config.host);
      return new InProcessHerald(id, port, db, redisPrefix, app);
    } catch (error) {
      await app?.close().catch(() => undefined);
      stopCopyingAppLog(id);
      await db.drop();
      await deleteRedisPrefix(redisPrefix);
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
      stopCopyingAppLog(this.id);
      await this.db.drop();
      await deleteRedisPrefix(this.redisPrefix);
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
