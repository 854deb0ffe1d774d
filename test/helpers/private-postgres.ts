import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { ensurePrograms, freePort, PostgresServer } from '../../scripts/lib/services';

/**
 * A throwaway PostgreSQL server on its own port, for fault tests that stop
 * and start the database (scripts/lib/services.js runs it). Never touches the
 * server the other tests use.
 */
export class PrivatePostgres {
  private constructor(
    private readonly server: PostgresServer,
    private readonly dir: string,
  ) {}

  get port(): number {
    return this.server.port;
  }

  get url(): string {
    return this.server.url;
  }

  static async create(): Promise<PrivatePostgres> {
    const { postgresql: bin } = ensurePrograms(['postgresql']);
    const dir = mkdtempSync(join(tmpdir(), 'herald-pg-'));
    chmodSync(dir, 0o755); // as root the server runs as the postgres user, who must reach its folder inside
    const server = new PostgresServer({ bin, home: join(dir, 'postgres'), port: await freePort(), fsync: false });
    server.init();
    server.start();
    return new PrivatePostgres(server, dir);
  }

  async start(): Promise<void> {
    this.server.start();
  }

  /** Immediate stop: like a crash, no clean shutdown of sessions. */
  async stop(): Promise<void> {
    this.server.stop('immediate');
  }

  /**
   * `start()` without blocking this process's event loop while pg_ctl runs, so
   * sockets of the test (WebSocket pongs, HTTP answers) keep being served.
   */
  async startAsync(): Promise<void> {
    await this.server.startAsync();
  }

  /** `stop()` (immediate, like a crash) without blocking this process's event loop. */
  async stopAsync(): Promise<void> {
    await this.server.stopAsync('immediate');
  }

  /** One query on a short-lived connection (so it works across stops and starts). */
  async query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new Client({ connectionString: this.url, connectionTimeoutMillis: 3000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async destroy(): Promise<void> {
    this.server.stopQuietly('immediate');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
