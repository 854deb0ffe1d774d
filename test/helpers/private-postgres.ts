import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort } from './replica';

/**
 * A throwaway PostgreSQL server on its own port, for fault tests that stop
 * and start the database. Uses the locally installed server binaries; never
 * touches the shared server on 5432.
 */
export class PrivatePostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly bin: string,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async create(): Promise<PrivatePostgres> {
    const root = '/usr/lib/postgresql';
    const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
    if (versions.length === 0) throw new Error(`no PostgreSQL server binaries under ${root}`);
    const bin = join(root, versions[0]!, 'bin');
    const dir = mkdtempSync(join(tmpdir(), 'herald-pg-'));
    chmodSync(dir, 0o700);
    const asPostgres = process.getuid?.() === 0;
    if (asPostgres) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(dir, uid, gid);
    }
    const server = new PrivatePostgres(await freePort(), dir, bin);
    server.run('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    this.run('pg_ctl', this.startArgs());
  }

  /** Immediate stop: like a crash, no clean shutdown of sessions. */
  async stop(): Promise<void> {
    this.run('pg_ctl', this.stopArgs());
  }

  private startArgs(): string[] {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    return ['-D', join(this.dir, 'data'), '-l', join(this.dir, 'server.log'), '-o', options, '-w', 'start'];
  }

  private stopArgs(): string[] {
    return ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop'];
  }

  /**
   * `start()` without blocking this process's event loop while pg_ctl runs, so
   * sockets of the test (WebSocket pongs, HTTP answers) keep being served.
   */
  async startAsync(): Promise<void> {
    await this.runAsync('pg_ctl', this.startArgs());
  }

  /** `stop()` (immediate, like a crash) without blocking this process's event loop. */
  async stopAsync(): Promise<void> {
    await this.runAsync('pg_ctl', this.stopArgs());
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
    spawnSync(...this.command('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', 'stop']), {
      stdio: 'ignore',
    });
    rmSync(this.dir, { recursive: true, force: true });
  }

  private command(tool: string, args: string[]): [string, string[]] {
    const path = join(this.bin, tool);
    return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
  }

  private runAsync(tool: string, args: string[]): Promise<void> {
    const [cmd, argv] = this.command(tool, args);
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${tool} failed (${code}): ${output}`))));
    });
  }

  private run(tool: string, args: string[]): void {
    const [cmd, argv] = this.command(tool, args);
    const result = spawnSync(cmd, argv, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${tool} failed (${result.status}): ${result.stderr || result.stdout}`);
  }
}
