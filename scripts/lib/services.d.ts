// Types of services.js, for the TypeScript tests that start private servers through it.
import type { ChildProcess, SpawnOptions } from 'node:child_process';

export type ProgramName = 'postgresql' | 'redis-server' | 'redis-cli' | 'nginx' | 'docker-compose' | 'chromium';

export class MissingPackagesError extends Error {
  readonly packages: string[];
}

export interface ProgramOptions {
  /** Replaces PATH (and the sbin fallbacks) when looking for the programs and apt-get. */
  path?: string;
  log?: (line: string) => void;
}

export function ensurePrograms(names: ProgramName[], options?: ProgramOptions): Record<ProgramName, string>;
export function findProgram(name: string, path?: string): string | null;
export function findPostgresBin(path?: string): string | null;
export function freePort(start?: number, taken?: Set<number>): Promise<number>;
export function portFree(port: number, host?: string): Promise<boolean>;
export function tcpAnswers(port: number, host?: string, probe?: string, expect?: string): Promise<boolean>;
export function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void>;
export function sleep(ms: number): Promise<void>;
export function isRoot(): boolean;
export function alive(pid: number): boolean;
export function sameProcess(pid: number, recordedStart?: string | null): boolean;
export function startTime(pid: number): string | null;

export type PostgresStopMode = 'smart' | 'fast' | 'immediate';

export class PostgresServer {
  constructor(options: { bin: string; home: string; port: number; logFile?: string; fsync?: boolean });
  readonly bin: string;
  readonly home: string;
  readonly port: number;
  readonly logFile: string;
  readonly dataDir: string;
  readonly url: string;
  command(tool: string, args: string[]): [string, string[]];
  init(): void;
  start(): void;
  stop(mode?: PostgresStopMode): void;
  startAsync(): Promise<void>;
  stopAsync(mode?: PostgresStopMode): Promise<void>;
  stopQuietly(mode?: PostgresStopMode): void;
  stopArgs(mode?: PostgresStopMode): string[];
  pid(): number | null;
}

export class RedisServer {
  constructor(options: { binary: string; port: number; dir?: string | null; fsyncAlways?: boolean });
  readonly port: number;
  readonly dir: string | null;
  readonly url: string;
  args(): string[];
  spawn(options?: SpawnOptions): Promise<ChildProcess>;
  answers(): Promise<boolean>;
}
