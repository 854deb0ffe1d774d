import { Cluster } from 'ioredis';
import { BUS_OFFSET, SLOTS } from '../../scripts/lib/redis-cluster';
import { portFree } from '../../scripts/lib/services';
import { PrivateRedisCluster } from '../helpers/private-redis-cluster';
import { waitFor } from '../helpers/wait';

const slotCount = (slots: [number, number][]): number =>
  slots.reduce((sum, [first, last]) => sum + last - first + 1, 0);

/** The test's view of the cluster: port → slot count of each master. */
async function slotsByPort(cluster: PrivateRedisCluster): Promise<Record<number, number>> {
  return Object.fromEntries((await cluster.masters()).map((m) => [m.port, slotCount(m.slots)]));
}

describe('PrivateRedisCluster (test/helpers/private-redis-cluster.ts)', () => {
  let cluster: PrivateRedisCluster;
  let client: Cluster;
  const key = `herald-cluster-helper-${process.pid}`;

  beforeAll(async () => {
    cluster = await PrivateRedisCluster.create({ nodeTimeoutMs: 2000 });
    client = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }], { lazyConnect: true });
    client.on('error', () => undefined);
    await client.connect();
  });

  afterAll(async () => {
    client?.disconnect();
    await cluster?.destroy();
  });

  it('starts 3 masters serving all 16384 slots, each with one replica', async () => {
    expect(cluster.ports).toHaveLength(6);
    expect(cluster.nodes).toBe(cluster.ports.map((port) => `127.0.0.1:${port}`).join(','));
    const masters = await cluster.masters();
    const replicas = await cluster.replicas();
    expect(masters).toHaveLength(3);
    expect(masters.reduce((sum, m) => sum + slotCount(m.slots), 0)).toBe(SLOTS);
    expect(replicas).toHaveLength(3);
    expect(replicas.map((r) => r.masterId).sort()).toEqual(masters.map((m) => m.id).sort());
    expect([...masters, ...replicas].map((n) => n.port).sort()).toEqual([...cluster.ports].sort());
    expect(await cluster.call(masters[0]!.port, 'CLUSTER', 'INFO')).toContain('cluster_state:ok');
  });

  it('promotes the replica of a killed master, which still has the key; the killed node rejoins as a replica', async () => {
    // WAIT on the connection that wrote: the replica has the key before its master dies.
    const written = await client.pipeline().set(key, 'kept').call('WAIT', 1, 5000).exec();
    expect(written).toEqual([
      [null, 'OK'],
      [null, 1],
    ]);
    const master = await cluster.masterOf(key);
    const replica = (await cluster.replicas()).find((r) => r.masterId === master.id)!;

    await cluster.kill(master.port);
    const failoverMs = await cluster.waitHealthy();
    expect(failoverMs).toBeLessThan(15_000);
    const masters = await cluster.masters();
    expect(masters.map((m) => m.port)).not.toContain(master.port);
    expect(masters.map((m) => m.port)).toContain(replica.port);
    expect(await cluster.masterOf(key)).toEqual({ id: replica.id, port: replica.port });
    expect(await client.get(key)).toBe('kept');

    await cluster.restart(master.port);
    await waitFor(
      'the killed master to rejoin as a replica of the promoted one',
      async () => (await cluster.replicas()).some((r) => r.port === master.port && r.masterId === replica.id),
      15_000,
    );
    await cluster.waitHealthy();
  });

  it('reshards 100 slots from one master to another', async () => {
    const [from, to] = await cluster.masters();
    const before = await slotsByPort(cluster);
    const reshardMs = await cluster.reshard(from!.id, to!.id, 100);
    expect(reshardMs).toBeGreaterThan(0);
    await cluster.waitHealthy();
    expect(await slotsByPort(cluster)).toEqual({
      ...before,
      [from!.port]: before[from!.port]! - 100,
      [to!.port]: before[to!.port]! + 100,
    });
    expect(await client.get(key)).toBe('kept');
  });

  it('rejects a reshard that cannot be done, with what redis-cli said', async () => {
    const [from] = await cluster.masters();
    await expect(cluster.reshardAsync(from!.id, 'no-such-node', 1).done).rejects.toThrow(/redis-cli --cluster/);
  });

  it('destroy kills every node, frees their ports, and may be called again', async () => {
    client.disconnect();
    await cluster.destroy();
    await cluster.destroy();
    for (const port of cluster.ports) {
      expect({ port, free: await portFree(port), bus: await portFree(port + BUS_OFFSET) }).toEqual({
        port,
        free: true,
        bus: true,
      });
    }
  });
});
