// Types of redis-cluster.js, for the TypeScript tests that start a private Redis Cluster through it.
import type { ChildProcess, SpawnOptions } from 'node:child_process';

export const SLOTS: number;
export const BUS_OFFSET: number;

export interface ClusterNode {
  id: string;
  host: string;
  port: number;
  flags: string[];
  role: 'master' | 'replica';
  masterId: string | null;
  /** False when flagged fail, fail?, handshake or noaddr, or its link is down. */
  usable: boolean;
  slots: [number, number][];
}

export function keySlot(key: string): number;
export function freeClusterPort(taken?: Set<number>, start?: number): Promise<number>;
export function call(port: number, command: string | number, ...args: (string | number)[]): Promise<unknown>;
export function infoFields(text: unknown): Record<string, string>;
export function parseClusterNodes(text: unknown): ClusterNode[];
/** SIGKILL a node spawned by `spawnNode` (through its tether when it has one); its 'exit' follows. */
export function stopNode(child: ChildProcess): void;

export interface ClusterShape {
  masters?: number;
  replicasPerMaster?: number;
  nodeTimeoutMs?: number;
}

export class RedisClusterServers {
  constructor(options: ClusterShape & { binary: string; cli: string; ports: number[]; dir: string });
  static prepare(
    options: ClusterShape & {
      dir: string;
      binary?: string;
      cli?: string;
      firstPort?: number;
      taken?: Set<number>;
      path?: string;
      log?: (line: string) => void;
    },
  ): Promise<RedisClusterServers>;
  readonly binary: string;
  readonly cli: string;
  readonly ports: number[];
  readonly dir: string;
  readonly masters: number;
  readonly replicasPerMaster: number;
  readonly nodeTimeoutMs: number;
  readonly nodes: string;
  readonly description: string;
  nodeDir(port: number): string;
  nodeArgs(port: number): string[];
  /** `tethered`: the node dies when this process does, however it ends; stop it with `stopNode`. */
  spawnNode(port: number, options?: SpawnOptions & { tethered?: boolean }): Promise<ChildProcess>;
  answers(port: number): Promise<boolean>;
  waitAnswers(ports: number[], timeoutMs: number): Promise<void>;
  create(options?: { timeoutMs?: number }): Promise<number>;
  reshard(port: number, fromId: string, toId: string, slots: number, timeoutMs?: number): Promise<number>;
  redisCli(args: string[], timeoutMs: number): Promise<string>;
  problem(options?: { ports?: number[]; replicasSynced?: boolean }): Promise<string | null>;
  waitHealthy(options?: { ports?: number[]; replicasSynced?: boolean; timeoutMs?: number }): Promise<number>;
}
