import { join } from 'node:path';
import type { PublisherResult, PublisherStart } from './ipc';
import { forkNode } from './proc';

export interface PublishSummary {
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  ids: string[];
  ms: number;
  perSecond: number;
  latencies: number[];
}

/** Runs `processes` publisher processes together (bench/clients/publisher.ts) and merges their results. */
export async function runPublishers(
  processes: number,
  start: Omit<PublisherStart, 'type' | 'concurrency' | 'count'> & { concurrency: number; count?: number },
): Promise<PublishSummary> {
  const script = join(__dirname, '..', 'clients', 'publisher.js');
  const per = Math.max(1, Math.round(start.concurrency / processes));
  const count = start.count ?? Number.MAX_SAFE_INTEGER;
  const results = await Promise.all(
    Array.from({ length: processes }, (_, p) => {
      const child = forkNode(script);
      return new Promise<PublisherResult>((resolve, reject) => {
        child.once('message', (result: PublisherResult) => resolve(result));
        child.once('exit', (code) => reject(new Error(`publisher exited with ${code} before reporting`)));
        const share = Math.floor(count / processes) + (p < count % processes ? 1 : 0);
        const message: PublisherStart = {
          ...start,
          type: 'start',
          concurrency: per,
          count: count === Number.MAX_SAFE_INTEGER ? count : share,
        };
        child.send(message);
      });
    }),
  );
  const startedAt = Math.min(...results.map((r) => r.startedAt));
  const doneAt = Math.max(...results.map((r) => r.doneAt));
  const ok = results.reduce((s, r) => s + r.ok, 0);
  const statuses: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return {
    ok,
    failed: results.reduce((s, r) => s + r.failed, 0),
    statuses,
    ids: results.flatMap((r) => r.ids),
    ms: doneAt - startedAt,
    perSecond: (ok * 1000) / Math.max(1, doneAt - startedAt),
    latencies: results.flatMap((r) => r.latencies),
  };
}
