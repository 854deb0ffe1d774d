import { randomUUID } from 'node:crypto';
import { MetricsService } from '../../apps/herald/src/metrics/metrics.service';
import { PublishModule } from '../../apps/herald/src/publish/publish.module';
import { PublishService } from '../../apps/herald/src/publish/publish.service';
import { moved } from '../helpers/metrics';
import { HeraldTestingModule } from '../helpers/testing-module';

/**
 * The metrics registry (MetricsModule) with the publish path and the delivery core wired as in the app, in
 * a Nest testing module: the series a scrape reads from Redis and PostgreSQL, and what each count means.
 * Counters moved by a scripted run across replicas: test/e2e/metrics.e2e-spec.ts.
 */
describe('MetricsModule', () => {
  let herald: HeraldTestingModule;
  let metrics: MetricsService;
  let publisher: PublishService;
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    herald = await HeraldTestingModule.create('metrics', [PublishModule]);
    metrics = herald.get(MetricsService);
    publisher = herald.get(PublishService);
  });

  afterAll(async () => {
    await herald?.close();
  });

  it('labels every series with the replica, and reads queue depth and timers when scraped', async () => {
    const text = await metrics.registry.metrics();
    const series = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(series.length).toBeGreaterThan(50);
    for (const line of series) expect(line).toContain(`replica="${herald.id}"`);
    const samples = await herald.metrics();
    expect(samples.get('herald_process_resident_memory_bytes')).toBeGreaterThan(0);
    // Read from Redis (BullMQ) at the scrape, not the -1 of a Redis that did not answer: the sweep's next
    // run is scheduled, and none failed.
    const jobs = (state: string) => samples.get(`herald_queue_jobs{queue="sweep",state="${state}"}`)!;
    for (const state of ['waiting', 'active', 'delayed', 'failed']) expect(jobs(state)).toBeGreaterThanOrEqual(0);
    expect(jobs('waiting') + jobs('active') + jobs('delayed')).toBeGreaterThanOrEqual(1);
    expect(jobs('failed')).toBe(0);
    expect(samples.get('herald_connections')).toBe(0);
    expect(samples.get('herald_redelivery_checks_waiting{kind="row"}')).toBe(0);
  });

  it('counts a stored notification by audience kind, once: an idempotent replay is not counted', async () => {
    const before = await herald.metrics();
    const request = publisher.parseRequest({ to: { users: [user('ann'), user('bob')] }, event: 'counted' });
    await publisher.publish('publisher-a', request, 'key-1');
    await publisher.publish('publisher-a', request, 'key-1');
    await publisher.publish('publisher-a', publisher.parseRequest({ to: { all: true }, event: 'all' }), undefined);
    await publisher.publish('publisher-a', publisher.parseRequest({ to: { topic: 'news' }, event: 't' }), undefined);
    const kinds = ['users', 'all', 'topic'].map((a) => `herald_notifications_published_total{audience="${a}"}`);
    expect(Object.values(moved(before, await herald.metrics(), kinds))).toEqual([1, 1, 1]);
  });

  it('counts sends, redeliveries among them, close codes, check outcomes and jobs by what they mean', async () => {
    const before = await herald.metrics();
    metrics.sent([1, 2, 3, 1]);
    metrics.connectionClosed(1000);
    metrics.connectionClosed(1008);
    metrics.connectionClosed(4321);
    metrics.redeliveryChecks({ resent: 2, handedOff: 3, parked: 0 });
    await metrics.countJob('sweep', Promise.resolve('done'));
    await expect(metrics.countJob('sweep', Promise.reject(new Error('no')))).rejects.toThrow('no');
    metrics.troubleRowsMade('replay_unacked', 0);
    const after = await herald.metrics();
    expect(
      moved(before, after, [
        'herald_deliveries_total{outcome="sent"}',
        'herald_redeliveries_total',
        'herald_connections_closed_total{code="1000"}',
        'herald_connections_closed_total{code="1008"}',
        'herald_connections_closed_total{code="other"}',
        'herald_redelivery_checks_total{outcome="resent"}',
        'herald_redelivery_checks_total{outcome="handed_off"}',
        'herald_redelivery_checks_total{outcome="parked"}',
        'herald_jobs_total{outcome="completed",queue="sweep"}',
        'herald_jobs_total{outcome="failed",queue="sweep"}',
        'herald_trouble_rows_total{reason="replay_unacked"}',
      ]),
    ).toEqual({
      'herald_deliveries_total{outcome="sent"}': 4,
      herald_redeliveries_total: 2,
      'herald_connections_closed_total{code="1000"}': 1,
      'herald_connections_closed_total{code="1008"}': 1,
      'herald_connections_closed_total{code="other"}': 1,
      'herald_redelivery_checks_total{outcome="resent"}': 2,
      'herald_redelivery_checks_total{outcome="handed_off"}': 3,
      'herald_redelivery_checks_total{outcome="parked"}': 0,
      'herald_jobs_total{outcome="completed",queue="sweep"}': 1,
      'herald_jobs_total{outcome="failed",queue="sweep"}': 1,
      'herald_trouble_rows_total{reason="replay_unacked"}': 0,
    });
    // A code nobody sent never becomes a series of its own: the label stays bounded.
    expect([...after.keys()].some((k) => k.includes('code="4321"'))).toBe(false);
  });
});
