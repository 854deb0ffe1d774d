import { randomUUID } from 'node:crypto';
import { publish, request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { moved, scrape } from '../helpers/metrics';
import { Replica } from '../helpers/replica';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/**
 * Counters across two replicas (the format of a scrape: test/integration/publish-api.int-spec.ts).
 * FAST_TIMINGS (ack timeout 400 ms, at most 3 sends), but a 2 s sweep: its backstop then lies seconds
 * after every redelivery check is due, so a check running late is never overtaken by a sweep resend.
 */
describe('Prometheus metrics at /metrics', () => {
  let cluster: TestCluster;
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    cluster = await TestCluster.start('metrics', 2, { HERALD_SWEEP_INTERVAL_MS: '2000' });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('moves every counter by exactly what a scripted run did: connect, publish, ack, redeliver, fail, expire, replay', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const bases = [r1.http, r2.http];
    const alice = user('alice');
    const bob = user('bob');
    const carol = user('carol');
    const before = await scrape(bases);

    const aliceClient = await TestClient.connect(r1.ws, userToken(alice)); // replays 0
    // Acked at once: sent 1, acked 1. Its ack records the send before the sent-mark would (SEND_RECORD_DELAY_MS
    // after the frame), so it gets no check.
    const acked = await publish(r2.http, { to: { users: [alice] }, event: 'm.acked', payload: {} });
    await aliceClient.notification(acked.id);
    expect(await aliceClient.ack(acked.id)).toMatchObject({ status: 'ok' });
    // Never acked: sent 3 (2 of them redeliveries), then failed.
    const ignored = await publish(r2.http, { to: { users: [alice] }, event: 'm.ignored', payload: {} });
    // Its check waits in the timers of the replica that sent it (recorded SEND_RECORD_DELAY_MS after the frame).
    await waitFor(
      'the check of the ignored delivery to be waiting',
      async () => ((await scrape(bases)).get('herald_redelivery_checks_waiting{kind="row"}') ?? 0) >= 1 || undefined,
      2000,
      20,
    );
    await aliceClient.notification(ignored.id, 3);
    await waitFor(
      'the ignored delivery to fail',
      async () => (await cluster.deliveryOf(ignored.id, alice))?.status === 'failed',
    );
    // Offline and short-lived: expired by the sweep, never sent.
    const lapsed = await publish(r1.http, { to: { users: [bob] }, event: 'm.lapsed', payload: {}, ttlSeconds: 1 });
    await waitFor(
      'the offline delivery to expire',
      async () => (await cluster.deliveryOf(lapsed.id, bob))?.status === 'expired',
      8000,
      5000,
    );
    // Offline, then replayed on connect (1 replayed, sent 1) and acked.
    const waiting = await publish(r1.http, { to: { users: [carol] }, event: 'm.waiting', payload: {} });
    const carolClient = await TestClient.connect(r2.ws, userToken(carol));
    await carolClient.notification(waiting.id);
    expect(await carolClient.ack(waiting.id)).toMatchObject({ status: 'ok' });
    // A topic nobody follows: published, no deliveries.
    const empty = await request<{ recipients: number }>(r1.http, 'POST', '/v1/notifications', {
      body: { to: { topic: `nobody-${randomUUID().slice(0, 8)}` }, event: 'm.empty', payload: {} },
    });
    expect(empty.body.recipients).toBe(0);

    // A forged token: refused before the upgrade.
    expect(await TestClient.refusedStatus(`${r1.ws}?token=not-a-token`)).toBe(401);

    await aliceClient.close();
    await carolClient.close();
    // Every redelivery check scheduled by the live sends above has run (the first fires ~500-700 ms after its
    // send). The replay schedules none: the sweep checks its batch.
    const done = 'herald_redelivery_checks_total{outcome="failed"}';
    const after = await waitFor(
      'the redelivery checks to finish and the counters to settle',
      async () => {
        const first = await scrape(bases);
        const waiting = first.get('herald_redelivery_checks_waiting{kind="row"}') ?? -1;
        if ((first.get(done) ?? 0) - (before.get(done) ?? 0) < 1 || waiting !== 0) return undefined;
        const second = await scrape(bases);
        return second.get(done) === first.get(done) ? second : undefined;
      },
      10_000,
      100,
    );

    expect(
      moved(before, after, [
        'herald_connections_opened_total',
        'herald_connections_closed_total{code="1000"}',
        'herald_connections',
        'herald_notifications_published_total{audience="users"}',
        'herald_notifications_published_total{audience="topic"}',
        'herald_deliveries_total{outcome="sent"}',
        'herald_deliveries_total{outcome="acked"}',
        'herald_deliveries_total{outcome="failed"}',
        'herald_deliveries_total{outcome="expired"}',
        'herald_redeliveries_total',
        'herald_publish_to_ack_seconds_count',
        'herald_send_to_ack_seconds_count',
        'herald_replay_size_count',
        'herald_replay_size_sum',
        'herald_bus_messages_total{direction="out"}',
        'herald_bus_messages_total{direction="in"}',
        'herald_redelivery_checks_total{outcome="resent"}',
        'herald_redelivery_checks_total{outcome="failed"}',
        'herald_redelivery_checks_total{outcome="stale"}',
        'herald_rate_limited_frames_total',
        'herald_upgrades_refused_total{status="401"}',
        'herald_http_requests_total{method="POST",route="/v1/notifications",status="202"}',
      ]),
    ).toEqual({
      herald_connections_opened_total: 2,
      'herald_connections_closed_total{code="1000"}': 2,
      herald_connections: 0,
      'herald_notifications_published_total{audience="users"}': 4,
      'herald_notifications_published_total{audience="topic"}': 1,
      'herald_deliveries_total{outcome="sent"}': 5,
      'herald_deliveries_total{outcome="acked"}': 2,
      'herald_deliveries_total{outcome="failed"}': 1,
      'herald_deliveries_total{outcome="expired"}': 1,
      herald_redeliveries_total: 2,
      herald_publish_to_ack_seconds_count: 2,
      herald_send_to_ack_seconds_count: 2,
      herald_replay_size_count: 2,
      herald_replay_size_sum: 1,
      // Routed by presence (ADR 0019): alice's 2 publishes and 2 resends, one message each to the replica holding
      // her; bob and carol were held by no replica, so nothing was sent for them.
      'herald_bus_messages_total{direction="out"}': 4,
      'herald_bus_messages_total{direction="in"}': 4,
      // One check per send still unacked when recorded: ignored (3: resent twice, then failed). The replay of
      // waiting makes none.
      'herald_redelivery_checks_total{outcome="resent"}': 2,
      'herald_redelivery_checks_total{outcome="failed"}': 1,
      'herald_redelivery_checks_total{outcome="stale"}': 0,
      herald_rate_limited_frames_total: 0,
      'herald_upgrades_refused_total{status="401"}': 1,
      'herald_http_requests_total{method="POST",route="/v1/notifications",status="202"}': 5,
    });
    // The sweep runs on its own clock: it ran, and never failed.
    expect(moved(before, after, ['herald_jobs_total{outcome="completed",queue="sweep"}'])).not.toEqual({
      'herald_jobs_total{outcome="completed",queue="sweep"}': 0,
    });
  });

  it('measures ack flushes by record, trouble rows by reason, and sweep runs', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const bases = [r1.http, r2.http];
    const topic = `m-${randomUUID().slice(0, 8)}`;
    const acking = user('acking');
    const silent = user('silent');
    const late = user('late');
    // Subscribed, then offline at the publish: the broadcast reaches `late` by replay.
    const lateFirst = await TestClient.connect(r2.ws, userToken(late));
    expect(await lateFirst.command({ type: 'subscribe', channel: topic, id: 's0' })).toMatchObject({ status: 'ok' });
    await lateFirst.close();
    const a = await TestClient.connect(r1.ws, userToken(acking));
    const s = await TestClient.connect(r2.ws, userToken(silent));
    expect(await a.command({ type: 'subscribe', channel: topic, id: 's1' })).toMatchObject({ status: 'ok' });
    expect(await s.command({ type: 'subscribe', channel: topic, id: 's2' })).toMatchObject({ status: 'ok' });
    const before = await scrape(bases);

    // One ack on the stream (a broadcast r1 sent), one on the rows (a user-list publish), in two flushes.
    const broadcast = await publish(r2.http, { to: { topic }, event: 'm.broadcast', payload: {} });
    await a.notification(broadcast.id);
    await s.notification(broadcast.id);
    expect(await a.ack(broadcast.id)).toMatchObject({ status: 'ok' });
    const direct = await publish(r2.http, { to: { users: [acking] }, event: 'm.direct', payload: {} });
    await a.notification(direct.id);
    expect(await a.ack(direct.id)).toMatchObject({ status: 'ok' });
    // Replayed on connect and never acked: the replay's check hands it off to a row.
    const l = await TestClient.connect(r1.ws, userToken(late));
    await l.notification(broadcast.id);

    // `silent` never acks the live send, nor `late` the replay: the sending replica's check and the sweep's
    // replay check (after the 400 ms ack timeout, in a 2 s sweep) make one trouble row each.
    const trouble = ['broadcast_unacked', 'replay_unacked'].map((r) => `herald_trouble_rows_total{reason="${r}"}`);
    const after = await waitFor(
      'a trouble row for each unacked broadcast delivery',
      async () => {
        const now = await scrape(bases);
        return Object.values(moved(before, now, trouble)).every((n) => n >= 1) ? now : undefined;
      },
      10_000,
      100,
    );
    expect(await cluster.deliveryOf(broadcast.id, silent)).toBeDefined();
    expect(await cluster.deliveryOf(broadcast.id, late)).toBeDefined();
    expect(await cluster.deliveryOf(broadcast.id, acking)).toBeUndefined();
    expect(
      moved(before, after, [
        ...trouble,
        'herald_ack_flush_size_count{record="stream"}',
        'herald_ack_flush_size_sum{record="stream"}',
        'herald_ack_flush_size_count{record="rows"}',
        'herald_ack_flush_size_sum{record="rows"}',
        'herald_ack_write_seconds_count{record="stream"}',
        'herald_ack_write_seconds_count{record="rows"}',
        'herald_ack_flush_seconds_count',
      ]),
    ).toEqual({
      'herald_trouble_rows_total{reason="broadcast_unacked"}': 1,
      'herald_trouble_rows_total{reason="replay_unacked"}': 1,
      'herald_ack_flush_size_count{record="stream"}': 1,
      'herald_ack_flush_size_sum{record="stream"}': 1,
      'herald_ack_flush_size_count{record="rows"}': 1,
      'herald_ack_flush_size_sum{record="rows"}': 1,
      'herald_ack_write_seconds_count{record="stream"}': 1,
      'herald_ack_write_seconds_count{record="rows"}': 1,
      herald_ack_flush_seconds_count: 2,
    });
    // A flush waits its 10 ms gathering window, so an ack's wait to its commit is at least about that.
    const flushSeconds = moved(before, after, ['herald_ack_flush_seconds_sum'])['herald_ack_flush_seconds_sum']!;
    expect(flushSeconds).toBeGreaterThanOrEqual(2 * 0.009);
    // The write is part of the flush.
    const writeSeconds = ['stream', 'rows']
      .map((r) => moved(before, after, [`herald_ack_write_seconds_sum{record="${r}"}`]))
      .flatMap((m) => Object.values(m))
      .reduce((x, y) => x + y, 0);
    expect(writeSeconds).toBeGreaterThan(0);
    expect(writeSeconds).toBeLessThan(flushSeconds);
    // Sweep runs are timed (the ones that made the rows among them).
    const swept = moved(before, after, ['herald_sweep_duration_seconds_count', 'herald_sweep_duration_seconds_sum']);
    expect(swept['herald_sweep_duration_seconds_count']).toBeGreaterThanOrEqual(1);
    expect(swept['herald_sweep_duration_seconds_sum']).toBeGreaterThan(0);
    await Promise.all([a.close(), s.close(), l.close()]);
  });
});
