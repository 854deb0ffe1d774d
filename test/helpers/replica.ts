import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publisherKeyId } from '../../apps/herald/src/auth/publisher-key-id';
import { TEST_REDIS_URL } from './env';
import { HERALD_MAIN } from './paths';
import { waitFor } from './wait';

export const TEST_API_KEY = 'test-publisher-key-0123456789';
export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdef0123456789';
export const TEST_ADMIN_PASSWORD = 'correct horse battery staple';
/**
 * The test key's publisher limits, lifted far above any test's or benchmark's rate (the limiter still runs
 * for every publish): `HERALD_PUBLISHER_LIMITS`, as docs/operations.md shows for a load test's key.
 */
export const LIFTED_PUBLISHER_LIMITS = `${publisherKeyId(TEST_API_KEY)}=10000000/10000000/1000000000000`;

/** Fast timings so redelivery, expiry and the sweep happen within a test. */
export const FAST_TIMINGS: Record<string, string> = {
  HERALD_ACK_TIMEOUT_MS: '400',
  HERALD_REDELIVERY_BACKOFF_MS: '100',
  HERALD_REDELIVERY_MAX_BACKOFF_MS: '200',
  HERALD_REDELIVERY_MAX_ATTEMPTS: '3',
  HERALD_SWEEP_INTERVAL_MS: '300',
  HERALD_PRESENCE_HEARTBEAT_MS: '300',
  HERALD_HEARTBEAT_MS: '1000',
  HERALD_SHUTDOWN_GRACE_MS: '3000',
};

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A test replica's environment: the private database and Redis prefix, the test keys, fast timings, and
 * `rest` on top. The replica processes get it as their environment; the in-process app (in-process.ts)
 * parses the same record (`AppData.config`, app-data.ts).
 */
export function replicaEnv(
  env: { databaseUrl: string; redisPrefix: string } & Record<string, string>,
): Record<string, string> {
  const { databaseUrl, redisPrefix, ...rest } = env;
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL: TEST_REDIS_URL,
    HERALD_REDIS_PREFIX: redisPrefix,
    HERALD_API_KEYS: TEST_API_KEY,
    HERALD_JWT_SECRET: TEST_JWT_SECRET,
    HERALD_PUBLISHER_LIMITS: LIFTED_PUBLISHER_LIMITS,
    LOG_LEVEL: 'debug',
    ...FAST_TIMINGS,
    ...rest,
  };
}

/** One Herald replica as a separate process, its log in a file. */
export class Replica {
  private process: ChildProcess | null = null;
  private exit: Promise<number | null> = Promise.resolve(null);
  private logWritten: Promise<void> = Promise.resolve();
  readonly logFile: string;

  constructor(
    readonly id: string,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {
    this.logFile = join(mkdtempSync(join(tmpdir(), `herald-${id}-`)), 'replica.log');
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  static async create(
    id: string,
    env: { databaseUrl: string; redisPrefix: string } & Record<string, string>,
  ): Promise<Replica> {
    return new Replica(id, await freePort(), replicaEnv(env));
  }

  async start(): Promise<void> {
    const child = this.spawn();
    await waitFor(
      `replica ${this.id} on :${this.port} to be ready (log: ${this.logFile})`,
      async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${this.log().slice(-2000)}`);
        const response = await fetch(`${this.http}/health/ready`);
        return response.status === 200;
      },
      20_000,
      100,
    );
  }

  /** Starts the process and waits for it to end by itself (a refused start); resolves with its exit code. */
  async runUntilExit(timeoutMs = 30_000): Promise<number | null> {
    const child = this.spawn();
    let timer: NodeJS.Timeout | undefined;
    try {
      const code = await Promise.race([
        this.exit,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`replica ${this.id} still running after ${timeoutMs} ms (log: ${this.logFile})`));
          }, timeoutMs);
        }),
      ]);
      await this.logWritten;
      return code;
    } finally {
      clearTimeout(timer);
      this.process = null;
    }
  }

  private spawn(): ChildProcess {
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [HERALD_MAIN], {
      env: { PATH: process.env.PATH ?? '', ...this.env, PORT: String(this.port), REPLICA_ID: this.id },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Both streams to one file, closed once both have ended (the first to end must not close it).
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    this.logWritten = new Promise((resolve) => child.once('close', () => log.end(resolve)));
    this.process = child;
    this.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    return child;
  }

  /** SIGKILL: no shutdown hooks, no goodbye to anyone. */
  async kill(): Promise<void> {
    this.process?.kill('SIGKILL');
    await this.exit;
    this.process = null;
  }

  /** SIGTERM: graceful shutdown; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (!this.process) return null;
    this.process.kill('SIGTERM');
    const code = await this.exit;
    this.process = null;
    return code;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}
