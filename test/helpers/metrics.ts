/** Prometheus text format, parsed just enough to compare counters across a scripted run. */
export type Samples = Map<string, number>;

/** `name{a="x",b="y"}` with labels sorted and the `replica` label dropped, so replicas sum up. */
function seriesKey(name: string, labels: string): string {
  const pairs = [...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)]
    .filter((m) => m[1] !== 'replica')
    .map((m) => `${m[1]}="${m[2]}"`)
    .sort();
  return pairs.length > 0 ? `${name}{${pairs.join(',')}}` : name;
}

export function parseMetrics(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const key = seriesKey(match[1]!, match[2] ?? '');
    samples.set(key, (samples.get(key) ?? 0) + Number(match[3]));
  }
  return samples;
}

/** Scrapes every replica and sums each series over them. */
export async function scrape(baseUrls: string[]): Promise<Samples> {
  const total: Samples = new Map();
  for (const base of baseUrls) {
    const response = await fetch(`${base}/metrics`);
    if (response.status !== 200) throw new Error(`${base}/metrics answered ${response.status}`);
    for (const [key, value] of parseMetrics(await response.text())) total.set(key, (total.get(key) ?? 0) + value);
  }
  return total;
}

/** How much each of `keys` moved between two scrapes (a series absent before counts from 0). */
export function moved(before: Samples, after: Samples, keys: string[]): Record<string, number> {
  return Object.fromEntries(keys.map((k) => [k, Math.round(((after.get(k) ?? 0) - (before.get(k) ?? 0)) * 1e6) / 1e6]));
}
