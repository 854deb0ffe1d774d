import { randomUUID } from 'node:crypto';
import { publish, request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { moved, parseMetrics, scrape } from '../helpers/metrics';
import { Replica } from '../helpers/replica';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/**
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

  it('serves the Prometheus text format with bounded labels and process metrics', async () => {
    const [r1] = cluster.replicas as [Replica, Replica];
    const response = await fetch(`${r1.http}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const samples = parseMetrics(text);
    expect(samples.has('herald_connections')).toBe(true);
    expect(samples.has('herald_process_resident_memory_bytes')).toBe(true);
    expect(samples.get('herald_queue_jobs{queue="sweep",state="failed"}')).toBe(0);
    expect(text).toContain(`replica="${r1.id}"`);
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
      // 4 user publishes + 2 resends out; in: only the replica holding alice listens (3 for her); nobody held bob or carol.
      'herald_bus_messages_total{direction="out"}': 6,
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
});
