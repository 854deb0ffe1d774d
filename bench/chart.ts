/**
 * Draws docs/images/bench-latency.svg and docs/images/bench-throughput.svg from the latest JSON results
 * in dist/bench-results/ (medians over repetitions), and docs/images/bench-storm.svg (reconnected clients
 * over time per server) from the storm's. Scenarios without results are left out.
 *   npm run bench:chart
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../test/helpers/paths';
import { SERVER_NAMES } from './lib/args';
import { progress, runMain } from './lib/log';
import { readResult } from './lib/results';
import type { Spread } from './lib/stats';
import { barChart, lineChart, LinePanel, Panel, singleGroupPanel } from './lib/svg';

type Row = { server: string } & Record<string, unknown>;

function medians(rows: Row[], key: string, filter: (r: Row) => boolean = () => true): Record<string, number> {
  const out: Record<string, number> = {};
  for (const row of rows.filter(filter)) {
    const value = row[key] as Spread | undefined;
    if (value && Number.isFinite(value.median)) out[row.server] = value.median;
  }
  return out;
}

async function main(): Promise<void> {
  const series = [...SERVER_NAMES];
  const unicast = readResult<{ summary: Row[] }>('unicast');
  const broadcast = readResult<{ summary: Row[] }>('broadcast');
  const ingest = readResult<{ summary: Row[] }>('ingest');
  const catchup = readResult<{ summary: Row[] }>('catchup');
  const idle = readResult<{ summary: Row[] }>('idle');
  const stamp = (doc: { finishedAt: string; smoke: boolean; machine: { cpus: number } } | undefined) =>
    doc ? `${doc.finishedAt.slice(0, 16)}${doc.smoke ? ' (SMOKE SIZES)' : ''}` : '';

  const latency: Panel[] = [];
  if (unicast) {
    const rows = unicast.result.summary;
    latency.push({
      title: 'Unicast via nginx',
      unit: 'ms',
      groups: ['p50', 'p95', 'p99', 'max'].map((p) => ({ label: p, values: medians(rows, p) })),
    });
  }
  if (broadcast) {
    const rows = broadcast.result.summary;
    latency.push({
      title: 'Broadcast completion',
      unit: 'ms',
      groups: [
        { label: 'p50', values: medians(rows, 'completionP50') },
        { label: 'p99', values: medians(rows, 'completionP99') },
      ],
    });
  }

  const throughput: Panel[] = [];
  if (broadcast) {
    const rows = broadcast.result.summary;
    throughput.push({
      title: 'Broadcast',
      unit: 'deliveries/s',
      groups: [
        { label: 'received', values: medians(rows, 'receivedPerSecond') },
        { label: 'acked', values: medians(rows, 'ackedPerSecond') },
      ],
    });
  }
  if (ingest) {
    const rows = ingest.result.summary;
    const best: Record<string, number> = {};
    for (const row of rows) {
      const v = (row.perSecond as Spread).median;
      if (Number.isFinite(v)) best[row.server] = Math.max(best[row.server] ?? 0, v);
    }
    throughput.push(singleGroupPanel('Ingest (best level)', 'publishes/s', 'accepted', best));
  }
  if (catchup) {
    const values = medians(catchup.result.summary, 'perSecond');
    throughput.push(singleGroupPanel('Catch-up', 'notifications/s', 'received+acked', values));
  }
  if (idle) {
    const rows = idle.result.summary;
    const sizes = [...new Set(rows.map((r) => r.size as number))];
    throughput.push({
      title: 'Idle connect rate',
      unit: 'connections/s',
      groups: sizes.map((size) => ({
        label: String(size),
        values: medians(rows, 'connectPerSecond', (r) => r.size === size),
      })),
    });
  }

  const dir = join(repoRoot(), 'docs', 'images');
  mkdirSync(dir, { recursive: true });
  const when = [unicast, broadcast].map(stamp).filter(Boolean).join(', ');
  // A chart with no results would replace the committed one with empty panels: left as it is.
  if (latency.length > 0) {
    writeFileSync(
      join(dir, 'bench-latency.svg'),
      barChart(
        'Herald vs raw ws vs Socket.IO: latency (median of repetitions)',
        `lower is better; runs ${when}`,
        series,
        latency,
      ),
    );
    progress(`wrote ${join(dir, 'bench-latency.svg')}`);
  }
  if (throughput.length > 0) {
    writeFileSync(
      join(dir, 'bench-throughput.svg'),
      barChart(
        'Herald vs raw ws vs Socket.IO: throughput (median of repetitions)',
        `higher is better; n/a = not applicable; runs ${[broadcast, ingest, catchup, idle].map(stamp).filter(Boolean).join(', ')}`,
        series,
        throughput,
      ),
    );
    progress(`wrote ${join(dir, 'bench-throughput.svg')}`);
  }

  const storm = readResult<{ summary: (Row & { storm: string; series: number[] })[] }>('storm');
  if (storm) {
    const step = (storm.parameters.seriesStepMs as number) / 1000;
    const panels: LinePanel[] = [...new Set(storm.result.summary.map((r) => r.storm))].map((name) => ({
      title: name === 'nginx-restart' ? 'Nginx stopped, started 1 s later' : 'one server process SIGKILLed',
      xUnit: 's',
      yUnit: 'clients reconnected',
      step,
      series: Object.fromEntries(storm.result.summary.filter((r) => r.storm === name).map((r) => [r.server, r.series])),
    }));
    const file = join(dir, 'bench-storm.svg');
    writeFileSync(
      file,
      lineChart(
        `Reconnect storm: ${storm.parameters.users as number} clients through Nginx to two processes`,
        `clients reconnected over time since the stop/kill (the repetition with the median 99% time); run ${stamp(storm)}`,
        panels,
      ),
    );
    progress(`wrote ${file}`);
  }
}

runMain(main);
