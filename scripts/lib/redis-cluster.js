'use strict';
// A private Redis Cluster on 127.0.0.1: `masters` × (1 + `replicasPerMaster`) redis-server nodes, each with its
// own folder. The tests spawn and own the nodes (test/helpers/private-redis-cluster.ts); `npm run up --
// --redis-cluster` launches each one itself with `nodeArgs(port)`, as it launches every process of the stack.
// Both then call `create()`. CommonJS with types in redis-cluster.d.ts, like services.js.
const { spawn } = require('node:child_process');
const { closeSync, mkdirSync, openSync, rmSync } = require('node:fs');
const { join, relative } = require('node:path');
const { ensurePrograms, freePort, portFree, sleep, tcpAnswers } = require('./services');

const SLOTS = 16384;
/** Each node's cluster bus listens on its port + 10000 (Redis's default), so both must be free. */
const BUS_OFFSET = 10000;
/** Flags of a CLUSTER NODES line that mean the node cannot serve now. */
const UNUSABLE = ['fail', 'fail?', 'handshake', 'noaddr'];

/** The hash slot of a key (`{tag}` rule included), as the cluster and ioredis compute it. */
function keySlot(key) {
  return require('cluster-key-slot')(key);
}

/**
 * A free port whose bus port is free too: from `start` up when given (skipping `taken`), else picked by the
 * kernel. Both are added to `taken`.
 */
async function freeClusterPort(taken = new Set(), start) {
  let next = start;
  for (let tries = 0; tries < 200; tries++) {
    const port = next === undefined ? await freePort() : await freePort(next, new Set(taken));
    if (next !== undefined) next = port + 1;
    const bus = port + BUS_OFFSET;
    if (bus > 65535 || taken.has(port) || taken.has(bus) || !(await portFree(bus))) continue;
    taken.add(port);
    taken.add(bus);
    return port;
  }
  throw new Error(`no free port with a free cluster bus port (+${BUS_OFFSET})${start ? ` from ${start}` : ''}`);
}

/** One command on a short-lived connection to 127.0.0.1:`port`. */
async function call(port, command, ...args) {
  const { Redis } = require('ioredis');
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
    commandTimeout: 5000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(String(command), ...args.map(String));
  } finally {
    redis.disconnect();
  }
}

/** `field:value` lines of INFO or CLUSTER INFO. */
function infoFields(text) {
  const fields = {};
  for (const line of String(text).split('\r\n').join('\n').split('\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

/** CLUSTER NODES as objects; `usable` is false for failed, suspected, handshaking and address-less nodes. */
function parseClusterNodes(text) {
  return String(text)
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [id, address, flagText, master, , , , link, ...slots] = line.split(' ');
      const hostPort = address.split('@')[0];
      const at = hostPort.lastIndexOf(':');
      const flags = flagText.split(',');
      return {
        id,
        host: hostPort.slice(0, at),
        port: Number(hostPort.slice(at + 1)),
        flags,
        role: flags.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? null : master,
        usable: link === 'connected' && !flags.some((flag) => UNUSABLE.includes(flag)),
        // Slots being migrated or imported are listed as [slot->-id] / [slot-<-id]: not owned yet.
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [first, last = first] = range.split('-').map(Number);
            return [first, last];
          }),
      };
    });
}

/**
 * sh -c TETHER redis-server args…: runs the node, and SIGKILLs it as soon as stdin reaches its end (the
 * spawning process closed it, or is gone); exits when the node does, with its status.
 */
const TETHER = [
  'exec 3<&0',
  '"$0" "$@" </dev/null 3<&- & node=$!',
  '{ read -r _ <&3; kill -9 "$node" 2>/dev/null; } &',
  'watcher=$!',
  'wait "$node"; code=$?',
  'kill "$watcher" 2>/dev/null',
  'exit "$code"',
].join('\n');

/** SIGKILL a node spawned by `spawnNode` (through its tether when it has one). */
function stopNode(child) {
  if (child.stdin) child.stdin.end();
  else child.kill('SIGKILL');
}

const slotCount = (node) => node.slots.reduce((sum, [first, last]) => sum + last - first + 1, 0);

/** The redis-server lines INFO replication gives a master: `slaveN:ip=…,port=…,state=online,…`. */
function onlineReplicaPorts(info) {
  return Object.entries(infoFields(info))
    .filter(([field]) => /^slave\d+$/.test(field))
    .map(([, value]) => Object.fromEntries(value.split(',').map((pair) => pair.split('='))))
    .filter((replica) => replica.state === 'online')
    .map((replica) => Number(replica.port));
}

class RedisClusterServers {
  /**
   * `dir` holds one folder per node (`dir`/<port>, its nodes-<port>.conf inside); `ports` are the client ports,
   * masters first (redis-cli makes the first `masters` of them masters).
   */
  constructor({ binary, cli, ports, dir, masters = 3, replicasPerMaster = 1, nodeTimeoutMs = 2000 }) {
    if (ports.length !== masters * (1 + replicasPerMaster)) {
      throw new Error(
        `${masters} masters × ${replicasPerMaster} replicas need ${masters * (1 + replicasPerMaster)} ports`,
      );
    }
    if (masters < 3) throw new Error('a Redis Cluster needs at least 3 masters');
    Object.assign(this, { binary, cli, ports, dir, masters, replicasPerMaster, nodeTimeoutMs });
  }

  /**
   * Finds redis-server and redis-cli (unless given; installed where ensurePrograms may) and free ports (from
   * `firstPort` when given, else the kernel's), and empties `dir`: a cluster keeps nothing between starts.
   */
  static async prepare(options) {
    const { masters = 3, replicasPerMaster = 1, firstPort, taken = new Set(), log } = options;
    const found =
      options.binary && options.cli ? {} : ensurePrograms(['redis-server', 'redis-cli'], { path: options.path, log });
    const ports = [];
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) ports.push(await freeClusterPort(taken, firstPort));
    rmSync(options.dir, { recursive: true, force: true });
    return new RedisClusterServers({
      ...options,
      binary: options.binary ?? found['redis-server'],
      cli: options.cli ?? found['redis-cli'],
      masters,
      replicasPerMaster,
      ports,
    });
  }

  /** Every node, `127.0.0.1:p1,127.0.0.1:p2,…`: what REDIS_CLUSTER_NODES takes. */
  get nodes() {
    return this.ports.map((port) => `127.0.0.1:${port}`).join(',');
  }

  /** For the stack's summary: `private cluster, 3 masters + 3 replicas on ports …`. */
  get description() {
    const where = relative(process.cwd(), this.dir);
    return (
      `private cluster, ${this.masters} masters + ${this.masters * this.replicasPerMaster} replicas ` +
      `on ports ${this.ports.join(', ')} (127.0.0.1; data in ${where.startsWith('..') ? this.dir : where})`
    );
  }

  nodeDir(port) {
    return join(this.dir, String(port));
  }

  /** The node's command line (after the binary); creates its folder, which redis-server needs to exist. */
  nodeArgs(port) {
    mkdirSync(this.nodeDir(port), { recursive: true });
    return [
      ...['--cluster-enabled', 'yes', '--cluster-node-timeout', String(this.nodeTimeoutMs)],
      ...['--cluster-config-file', `nodes-${port}.conf`, '--port', String(port), '--bind', '127.0.0.1'],
      ...['--save', '', '--appendonly', 'no', '--dir', this.nodeDir(port), '--daemonize', 'no'],
      // A replica's full sync starts at once rather than after the default 5 s wait for more replicas.
      ...['--repl-diskless-sync-delay', '0'],
    ];
  }

  /**
   * Starts one node, its output in `nodeDir`/redis.log; resolves once it answers. `tethered`: it runs under a
   * small sh that SIGKILLs it when its stdin closes, so it dies with this process however that ends (a Jest
   * worker runs no clean-up code when it exits or is killed); `stopNode(child)` then kills it.
   */
  async spawnNode(port, { tethered = false, ...options } = {}) {
    const args = this.nodeArgs(port);
    const log = openSync(join(this.nodeDir(port), 'redis.log'), 'a');
    const child = tethered
      ? spawn('sh', ['-c', TETHER, this.binary, ...args], { stdio: ['pipe', log, log], ...options })
      : spawn(this.binary, args, { stdio: ['ignore', log, log], ...options });
    closeSync(log);
    child.once('error', () => undefined);
    child.stdin?.on('error', () => undefined); // the tether gone already
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
    try {
      await Promise.race([
        this.waitAnswers([port], 15_000),
        exited.then((how) => {
          throw new Error(`redis-server on :${port} exited (${how}) before it answered; see ${this.nodeDir(port)}`);
        }),
      ]);
    } catch (error) {
      stopNode(child);
      throw error;
    }
    return child;
  }

  answers(port) {
    return tcpAnswers(port, '127.0.0.1', 'PING\r\n', '+PONG');
  }

  async waitAnswers(ports, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (const port of ports) {
      while (!(await this.answers(port))) {
        if (Date.now() > deadline) throw new Error(`Redis node on 127.0.0.1:${port} did not answer PING`);
        await sleep(50);
      }
    }
  }

  /**
   * Once every node answers: `redis-cli --cluster create`, then waits until the cluster is healthy with every
   * replica in sync. Resolves with the ms it took.
   */
  async create({ timeoutMs = 30_000 } = {}) {
    const begun = Date.now();
    await this.waitAnswers(this.ports, timeoutMs);
    const addresses = this.ports.map((port) => `127.0.0.1:${port}`);
    const replicas = String(this.replicasPerMaster);
    await this.redisCli(
      ['--cluster', 'create', ...addresses, '--cluster-replicas', replicas, '--cluster-yes'],
      timeoutMs,
    );
    await this.waitHealthy({ replicasSynced: true, timeoutMs: Math.max(1000, timeoutMs - (Date.now() - begun)) });
    return Date.now() - begun;
  }

  /**
   * `redis-cli --cluster reshard` through the node on `port`: moves `slots` slots (and their keys) from one
   * master to another. Resolves with the ms it took; rejects with redis-cli's output.
   */
  async reshard(port, fromId, toId, slots, timeoutMs = 120_000) {
    const begun = Date.now();
    await this.redisCli(
      [
        ...['--cluster', 'reshard', `127.0.0.1:${port}`, '--cluster-from', fromId, '--cluster-to', toId],
        ...['--cluster-slots', String(slots), '--cluster-yes'],
      ],
      timeoutMs,
    );
    return Date.now() - begun;
  }

  /** Runs redis-cli; resolves with its output, rejects with it when it fails or outlasts `timeoutMs`. */
  redisCli(args, timeoutMs) {
    return new Promise((resolve, reject) => {
      const child = spawn(this.cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk.toString()));
      child.stderr.on('data', (chunk) => (output += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        // redis-cli --cluster reports some failures ([ERR]) with exit code 0.
        if (code === 0 && !/^\[ERR\]/m.test(output)) resolve(output);
        else reject(new Error(`redis-cli ${args.slice(0, 2).join(' ')} failed (${code ?? signal}):\n${output.trim()}`));
      });
    });
  }

  /**
   * null when the nodes on `ports` (default: all) are healthy, else why not: each says cluster_state:ok and
   * cluster_slots_ok:16384, each sees all 16384 slots served by usable masters on `ports`, and they agree on
   * who serves what. With `replicasSynced`, also: the expected numbers of masters and replicas, every node
   * known to every other, and each master's INFO replication shows its replicas online.
   */
  async problem({ ports = this.ports, replicasSynced = false } = {}) {
    let agreed = null;
    let view = [];
    for (const port of ports) {
      const info = infoFields(await call(port, 'CLUSTER', 'INFO'));
      if (info.cluster_state !== 'ok') return `:${port} says cluster_state:${info.cluster_state}`;
      if (Number(info.cluster_slots_ok) !== SLOTS) return `:${port} says cluster_slots_ok:${info.cluster_slots_ok}`;
      if (replicasSynced && Number(info.cluster_known_nodes) !== this.ports.length)
        return `:${port} knows ${info.cluster_known_nodes} of ${this.ports.length} nodes`;
      view = parseClusterNodes(await call(port, 'CLUSTER', 'NODES'));
      const masters = view.filter((node) => node.role === 'master' && node.usable);
      const down = masters.find((node) => slotCount(node) > 0 && !ports.includes(node.port));
      if (down) return `:${port} sees slots on :${down.port}, which is not running`;
      const served = masters.reduce((sum, node) => sum + slotCount(node), 0);
      if (served !== SLOTS) return `:${port} sees ${served} of ${SLOTS} slots served`;
      const owners = JSON.stringify(masters.map((node) => [node.id, node.slots]).sort());
      if (agreed !== null && owners !== agreed) return `:${port} and :${ports[0]} disagree on who serves which slots`;
      agreed = owners;
    }
    if (!replicasSynced) return null;
    const masters = view.filter((node) => node.role === 'master' && node.usable);
    const replicas = view.filter((node) => node.role === 'replica' && node.usable);
    if (masters.length !== this.masters || replicas.length !== this.masters * this.replicasPerMaster)
      return `${masters.length} masters and ${replicas.length} replicas`;
    for (const master of masters) {
      const online = onlineReplicaPorts(await call(master.port, 'INFO', 'replication'));
      const behind = replicas.find((replica) => replica.masterId === master.id && !online.includes(replica.port));
      if (behind) return `replica :${behind.port} of :${master.port} is not in sync yet`;
    }
    return null;
  }

  /** Polls `problem()` every 100 ms until there is none; resolves with the ms it took, else throws the last one. */
  async waitHealthy({ ports, replicasSynced = false, timeoutMs = 20_000 } = {}) {
    const begun = Date.now();
    for (;;) {
      let why;
      try {
        why = await this.problem({ ports, replicasSynced });
      } catch (error) {
        why = error instanceof Error ? error.message : String(error);
      }
      if (why === null) return Date.now() - begun;
      if (Date.now() - begun > timeoutMs) {
        throw new Error(`the Redis Cluster was not healthy within ${timeoutMs / 1000} s: ${why}`);
      }
      await sleep(100);
    }
  }
}

module.exports = {
  BUS_OFFSET,
  RedisClusterServers,
  SLOTS,
  call,
  freeClusterPort,
  infoFields,
  keySlot,
  parseClusterNodes,
  stopNode,
};
