import { ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { ClusterNode, RedisClusterServers } from '../../scripts/lib/redis-cluster';
import { repoRoot } from './paths';

// From the repository's scripts/lib by path, not by a relative import: the bench's build (dist/bench) runs
// this file too, and scripts/lib is plain JavaScript that no build copies.
const load = createRequire(__filename);
const {
  call,
  keySlot,
  parseClusterNodes,
  RedisClusterServers: ClusterServers,
  stopNode,
} = load(join(repoRoot(), 'scripts', 'lib', 'redis-cluster.js')) as typeof import('../../scripts/lib/redis-cluster');
const { sameProcess, startTime } = load(
  join(repoRoot(), 'scripts', 'lib', 'services.js'),
) as typeof import('../../scripts/lib/services');

const DIR_PREFIX = 'herald-redis-cluster-';

/** Who owns a cluster folder, so that a later create() can stop the nodes of a test process that was killed. */
interface OwnerRecord {
  pid: number;
  startTime: string | null;
  nodes: Record<string, { pid: number; startTime: string | null }>;
}

interface RunningNode {
  child: ChildProcess;
  exit: Promise<void>;
}

/**
 * A throwaway Redis Cluster on 127.0.0.1 (scripts/lib/redis-cluster.js runs it): 3 masters with a replica each
 * by default, every node tied to this process (it dies with it) and its folder under os.tmpdir(), for tests of
 * failover and resharding. Never touches the shared Redis.
 */
export class PrivateRedisCluster {
  readonly nodes: string;
  readonly ports: number[];
  private readonly running = new Map<number, RunningNode>();
  private destroyed = false;

  private constructor(
    private readonly servers: RedisClusterServers,
    private readonly dir: string,
  ) {
    this.nodes = servers.nodes;
    this.ports = [...servers.ports];
  }

  static async create(
    options: { masters?: number; replicasPerMaster?: number; nodeTimeoutMs?: number } = {},
  ): Promise<PrivateRedisCluster> {
    removeLeftovers();
    const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
    let servers: RedisClusterServers;
    try {
      servers = await ClusterServers.prepare({ nodeTimeoutMs: 2000, ...options, dir: join(dir, 'nodes') });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const cluster = new PrivateRedisCluster(servers, dir);
    try {
      await Promise.all(servers.ports.map((port) => cluster.start(port)));
      await servers.create();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** Ports of the nodes running now (not killed). */
  get livePorts(): number[] {
    return this.ports.filter((port) => this.running.has(port));
  }

  /** The redis-server process ids of the running nodes (from INFO server: the nodes run under a wrapper). */
  async pids(): Promise<number[]> {
    return Promise.all(
      this.livePorts.map(async (port) => {
        const info = String(await call(port, 'INFO', 'server'));
        return Number(/process_id:(\d+)/.exec(info)?.[1]);
      }),
    );
  }

  /** Masters that can serve (failed and handshaking nodes left out), with their slot ranges, by port. */
  async masters(): Promise<{ id: string; port: number; slots: [number, number][] }[]> {
    return (await this.view())
      .filter((node) => node.role === 'master')
      .map(({ id, port, slots }) => ({ id, port, slots }));
  }

  /** Replicas that can serve, with the id of their master, by port. */
  async replicas(): Promise<{ id: string; port: number; masterId: string }[]> {
    return (await this.view())
      .filter((node) => node.role === 'replica' && node.masterId !== null)
      .map(({ id, port, masterId }) => ({ id, port, masterId: masterId! }));
  }

  /** The master that serves `key`'s hash slot now. */
  async masterOf(key: string): Promise<{ id: string; port: number }> {
    const slot = keySlot(key);
    const master = (await this.masters()).find((m) => m.slots.some(([first, last]) => slot >= first && slot <= last));
    if (!master) throw new Error(`no master serves slot ${slot} (key ${key})`);
    return { id: master.id, port: master.port };
  }

  /** SIGKILL one node; resolves once it has exited. */
  async kill(port: number): Promise<void> {
    const node = this.running.get(port);
    if (!node) throw new Error(`no node of this cluster runs on :${port}`);
    node.child.ref(); // held until it has exited (see destroy)
    stopNode(node.child);
    await node.exit;
    this.running.delete(port);
    this.record();
  }

  /** Starts a killed node again with its config file: it rejoins (a failed-over master as a replica). */
  async restart(port: number): Promise<void> {
    if (!this.ports.includes(port)) throw new Error(`:${port} is not a node of this cluster`);
    if (this.running.has(port)) throw new Error(`the node on :${port} is running`);
    await this.start(port);
  }

  /**
   * Waits until every running node says cluster_state:ok and sees all 16384 slots served by running masters,
   * all agreeing who serves which; resolves with the ms it took.
   */
  waitHealthy(timeoutMs = 20_000): Promise<number> {
    return this.servers.waitHealthy({ ports: this.livePorts, timeoutMs });
  }

  /** `redis-cli --cluster reshard` of `slots` slots between two masters; resolves with the ms it took. */
  reshard(fromId: string, toId: string, slots: number): Promise<number> {
    return this.reshardAsync(fromId, toId, slots).done;
  }

  /** `reshard`, for a test that publishes while the slots move. */
  reshardAsync(fromId: string, toId: string, slots: number): { done: Promise<number> } {
    const port = this.livePorts[0];
    if (port === undefined) return { done: Promise.reject(new Error('no node of the cluster is running')) };
    return { done: this.servers.reshard(port, fromId, toId, slots) };
  }

  /** Runs one command on a short-lived connection to one node, e.g. `call(port, 'CLUSTER', 'INFO')`. */
  call(port: number, ...args: (string | number)[]): Promise<unknown> {
    const [command, ...rest] = args;
    if (command === undefined) return Promise.reject(new Error('call needs a command'));
    return call(port, command, ...rest);
  }

  /** Kills every node and removes the folders; safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const exits = [...this.running.values()].map((node) => node.exit);
    // Referenced again while they stop: otherwise, with nothing else pending, the process would end before
    // their exits (a script, such as the bench, that destroys the cluster last).
    for (const node of this.running.values()) {
      node.child.ref();
      stopNode(node.child);
    }
    await Promise.all(exits);
    this.running.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async start(port: number): Promise<void> {
    if (this.destroyed) throw new Error('the cluster was destroyed');
    // Tethered: the node dies with this Jest worker, however it ends (Jest's sandbox never runs a
    // process 'exit' listener). Unreferenced, so a test that forgets destroy() does not hold Jest open.
    const child = await this.servers.spawnNode(port, { tethered: true });
    child.unref();
    (child.stdin as Socket | null)?.unref();
    const exit = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    this.running.set(port, { child, exit });
    this.record();
  }

  /** CLUSTER NODES of the first running node that answers, without the nodes that cannot serve now. */
  private async view(): Promise<ClusterNode[]> {
    let last: unknown = new Error('no node of the cluster is running');
    for (const port of this.livePorts) {
      try {
        const nodes = parseClusterNodes(await call(port, 'CLUSTER', 'NODES'));
        return nodes.filter((node) => node.usable).sort((a, b) => a.port - b.port);
      } catch (error) {
        last = error;
      }
    }
    throw last;
  }

  private record(): void {
    const owner: OwnerRecord = { pid: process.pid, startTime: startTime(process.pid), nodes: {} };
    for (const [port, { child }] of this.running) {
      if (child.pid) owner.nodes[port] = { pid: child.pid, startTime: startTime(child.pid) };
    }
    writeFileSync(join(this.dir, 'owner.json'), JSON.stringify(owner, null, 2) + '\n');
  }
}

/**
 * Removes the folders of clusters whose test process is gone (a Jest worker that ended before destroy()), and
 * SIGKILLs any node of theirs still there (their tethers normally saw to that). Live processes' are left alone.
 */
function removeLeftovers(): void {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(DIR_PREFIX))) {
    const dir = join(tmpdir(), name);
    let owner: OwnerRecord | null = null;
    try {
      owner = JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8')) as OwnerRecord;
    } catch {
      // not written yet, or a folder from a create() that failed early
    }
    if (owner && sameProcess(owner.pid, owner.startTime)) continue;
    try {
      if (!owner && Date.now() - statSync(dir).mtimeMs < 60_000) continue; // being created right now
    } catch {
      continue; // gone meanwhile
    }
    for (const node of Object.values(owner?.nodes ?? {})) {
      if (sameProcess(node.pid, node.startTime)) process.kill(node.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
