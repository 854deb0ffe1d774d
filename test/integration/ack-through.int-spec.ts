import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ErrorFrame, ServerFrame, WelcomeFrame } from '@herald/protocol';
import { buildSync } from 'esbuild';
import { DataSource } from 'typeorm';
import WebSocket from 'ws';
import { HeraldClient } from '../../libs/client/src';
import { createDataSource } from '../../apps/herald/src/database/data-source';
import { NotificationRepository } from '../../apps/herald/src/record/notification.repository';
import { publish, userToken } from '../helpers/api';
import { InProcessHerald } from '../helpers/in-process';
import { repoRoot } from '../helpers/paths';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/** The last commit before `ackThrough`: its SDK acks by id only, as an app built against it does. */
const SDK_BEFORE_ACK_THROUGH = '1cdec40';

/** The SDK (and the protocol it imports) as it stood at `commit`, bundled into one CommonJS file. */
function buildOldSdk(commit: string, dir: string): { HeraldClient: typeof HeraldClient } {
  for (const lib of ['client', 'protocol']) {
    const files = execFileSync('git', ['ls-tree', '-r', '--name-only', commit, `libs/${lib}/src/`], { cwd: repoRoot() })
      .toString()
      .split('\n')
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));
    for (const file of files) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, file), execFileSync('git', ['show', `${commit}:${file}`], { cwd: repoRoot() }));
    }
  }
  const outfile = join(dir, 'old-sdk.cjs');
  buildSync({
    entryPoints: [join(dir, 'libs/client/src/index.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile,
    alias: { '@herald/protocol': join(dir, 'libs/protocol/src/index.ts') },
    logLevel: 'silent',
  });
  return createRequire(__filename)(outfile) as { HeraldClient: typeof HeraldClient };
}

/** The `ws` WebSocket, recording every frame the SDK sends. */
function recordingWebSocket(sent: Record<string, unknown>[]): typeof WebSocket {
  return class extends WebSocket {
    override send(data: string, ...rest: unknown[]): void {
      sent.push(JSON.parse(data) as Record<string, unknown>);
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  };
}

describe('Acks with "through" and quiet acks (the ackThrough and quietAcks features)', () => {
  let herald: InProcessHerald;
  let store: DataSource;
  const clients: TestClient[] = [];
  const sdks: { close(): void }[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const connect = async (userId: string) => {
    const client = await TestClient.connect(herald.ws, userToken(userId));
    clients.push(client);
    return client;
  };
  const publishTo = async (userId: string, count: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++)
      ids.push((await publish(herald.http, { to: { users: [userId] }, event: 'e', payload: { i } })).id);
    return ids;
  };
  /** Stored, but never routed to anyone: what a replica sees of a bus message that was lost. */
  const storeOnly = async (userId: string, dueInMs: number): Promise<string> => {
    const created = await new NotificationRepository(store).create(
      {
        id: randomUUID(),
        publisherId: 'pk_test',
        idempotencyKey: null,
        requestHash: 'h',
        audience: { users: [userId] },
        event: 'dropped',
        payload: {},
        ttlSeconds: 600,
      },
      new Date(Date.now() + dueInMs),
    );
    return created.notification.id;
  };
  const statuses = async (userId: string, ids: string[]) => {
    const found: (string | undefined)[] = [];
    for (const id of ids) found.push((await herald.deliveryOf(id, userId))?.status);
    return found;
  };
  const through = (client: TestClient, id: string) => client.command({ type: 'ack', id, through: true });

  beforeAll(async () => {
    herald = await InProcessHerald.start('through');
    store = createDataSource(herald.db.url, 'herald-int-through');
    await store.initialize();
  });

  afterEach(async () => {
    for (const sdk of sdks.splice(0)) sdk.close();
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await store?.destroy();
    await herald?.stop();
  });

  it('is advertised in welcome on WebSocket connections', async () => {
    const client = await connect(user('w'));
    const welcome = await client.next((f): f is WelcomeFrame => f.type === 'welcome');
    expect(welcome).toMatchObject({ protocol: 1, features: ['ackThrough', 'quietAcks'] });
  });

  it('records quiet acks without answering them, and answers only the ids it could not take', async () => {
    const erin = user('erin');
    const client = await connect(erin);
    const ids = await publishTo(erin, 4);
    const [theirs] = await publishTo(user('frank'), 1);
    for (const id of ids) await client.notification(id);
    const from = client.frames.length;

    client.send({ type: 'ack', id: ids[0], quiet: true });
    client.send({ type: 'acks', ids: [ids[1], ids[2], theirs, 'not-a-uuid'], quiet: true });
    client.send({ type: 'ack', id: ids[3], through: true, quiet: true });
    await waitFor('the quiet acks recorded', async () => (await statuses(erin, ids)).every((s) => s === 'acked'));
    expect(await client.next((f: ServerFrame) => f.type === 'error', 10_000, from)).toEqual({
      type: 'error',
      code: 'FORBIDDEN',
      message: 'no such notifications for this user: none of these ids was acked',
      ids: [theirs, 'not-a-uuid'],
    });
    // An answered ack sent after them comes back after any answer to them would have: there was none.
    expect(await client.ack(ids[0]!)).toEqual({ type: 'ack', id: ids[0], status: 'duplicate' });
    expect(client.frames.slice(from).map((f) => f.type)).toEqual(['error', 'ack']);
    // A quiet ack of another user's notification is answered as an answered one is.
    expect(await client.command({ type: 'ack', id: theirs!, quiet: true })).toEqual({
      type: 'error',
      code: 'FORBIDDEN',
      message: 'no such notification for this user',
      id: theirs,
    });
    expect(await client.command({ type: 'ack', id: ids[0]!, quiet: 1 })).toEqual({
      type: 'error',
      code: 'BAD_REQUEST',
      message: '"quiet" must be true or false',
      id: ids[0],
    });
  });

  it('acks the named notification and everything sent earlier on the connection, answered by one frame', async () => {
    const alice = user('alice');
    const client = await connect(alice);
    const ids = await publishTo(alice, 4);
    for (const id of ids) await client.notification(id);

    expect(await through(client, ids[2]!)).toEqual({ type: 'ack', id: ids[2], status: 'ok', settled: 3 });
    expect(await statuses(alice, ids)).toEqual(['acked', 'acked', 'acked', expect.not.stringMatching('acked')]);
    // What was acked by id in between is not counted again.
    expect(await client.ack(ids[3]!)).toEqual({ type: 'ack', id: ids[3], status: 'ok' });
    const more = await publishTo(alice, 1);
    await client.notification(more[0]!);
    expect(await through(client, more[0]!)).toEqual({ type: 'ack', id: more[0], status: 'ok', settled: 1 });
  });

  it('never settles a notification that was not sent on the connection: a dropped bus message stays open until delivered', async () => {
    const bob = user('bob');
    const client = await connect(bob);
    // The connect replay runs after the welcome: one stored during it is replayed. A live frame waits for
    // the replay's end, so once the marker is here, what is stored next is only the sweep's to send.
    const [marker] = await publishTo(bob, 1);
    await client.notification(marker!);
    expect(await client.ack(marker!)).toEqual({ type: 'ack', id: marker, status: 'ok' });
    const dropped = await storeOnly(bob, 2_000);
    const [later] = await publishTo(bob, 1);
    await client.notification(later!);

    expect(await through(client, later!)).toEqual({ type: 'ack', id: later, status: 'ok', settled: 1 });
    expect(await statuses(bob, [dropped, later!])).toEqual(['pending', 'acked']);
    // A through naming it is refused: it was never sent here.
    expect(await through(client, dropped)).toEqual({
      type: 'error',
      code: 'BAD_REQUEST',
      message:
        '"through" names a notification not sent on this connection (or sent too long ago to be remembered); ack it by id',
      id: dropped,
    });
    // The sweep finds it due and sends it; then it is acked like any other.
    await client.notification(dropped, 1, 15_000);
    expect(await client.ack(dropped)).toEqual({ type: 'ack', id: dropped, status: 'ok' });
  });

  it('answers bad input with exact errors and settles nothing', async () => {
    const carol = user('carol');
    const dave = user('dave');
    const client = await connect(carol);
    const [mine] = await publishTo(carol, 1);
    const [theirs] = await publishTo(dave, 1);
    await client.notification(mine!);
    const forbidden = (id: string): ErrorFrame => ({
      type: 'error',
      code: 'FORBIDDEN',
      message: 'no such notification for this user',
      id,
    });

    const unknown = randomUUID();
    expect(await through(client, unknown)).toEqual(forbidden(unknown));
    // Another user's notification: the same answer as a per-id ack of it.
    expect(await through(client, theirs!)).toEqual(forbidden(theirs!));
    expect(await client.ack(theirs!)).toEqual(forbidden(theirs!));
    expect(await through(client, 'not-a-uuid')).toEqual(forbidden('not-a-uuid'));
    expect(await client.command({ type: 'ack', id: mine!, through: 'yes' })).toEqual({
      type: 'error',
      code: 'BAD_REQUEST',
      message: '"through" must be true or false',
      id: mine,
    });
    const from = client.frames.length;
    client.send({ type: 'acks', ids: [mine], through: true });
    expect(await client.next((f: ServerFrame) => f.type === 'error', 10_000, from)).toEqual({
      type: 'error',
      code: 'BAD_REQUEST',
      message: '"through" is not allowed in "acks": send {"type":"ack","id":…,"through":true} on its own',
    });
    expect(await statuses(carol, [mine!])).toEqual([expect.not.stringMatching('acked')]);

    expect(await through(client, mine!)).toEqual({ type: 'ack', id: mine, status: 'ok', settled: 1 });
    // Repeated: nothing left to settle, and said so.
    expect(await through(client, mine!)).toEqual({
      type: 'error',
      code: 'BAD_REQUEST',
      message:
        '"through" names a notification already settled (acked): a repeated ack, or acked by id; nothing was acked',
      id: mine,
    });
  });

  it('is used by the SDK, and an SDK built before it (acks by id only) works against this server as before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-old-sdk-'));
    try {
      const Old = buildOldSdk(SDK_BEFORE_ACK_THROUGH, dir).HeraldClient;
      for (const [label, Client] of [
        ['current', HeraldClient],
        ['old', Old],
      ] as const) {
        const userId = user(label);
        const sent: Record<string, unknown>[] = [];
        const sdk = new Client({ url: herald.ws, token: userToken(userId), WebSocket: recordingWebSocket(sent) });
        sdks.push(sdk);
        const seen = new Set<string>();
        sdk.onNotification((n) => void seen.add(n.id));
        // Published before the connect, so the replay sends the twenty together: published one by one to a
        // connected SDK on a loaded machine, each may be handled and acked alone, and a lone ack needs no
        // `through` (it covers two or more).
        const ids = await publishTo(userId, 20);
        const open = new Promise<void>((resolve) => sdk.on('open', () => resolve()));
        sdk.connect();
        await open;
        await waitFor(`${label} SDK: all twenty handled`, () => ids.every((id) => seen.has(id)));
        await waitFor(`${label} SDK: all twenty acked`, async () =>
          (await statuses(userId, ids)).every((s) => s === 'acked'),
        );
        const acks = sent.filter((f) => f.type === 'ack' || f.type === 'acks');
        if (label === 'old') expect(acks.some((f) => 'through' in f)).toBe(false);
        else expect(acks.some((f) => f.through === true)).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
