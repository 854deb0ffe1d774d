/**
 * A publisher process: a closed loop of `concurrency` requests over keep-alive HTTP, one recipient
 * each, until the duration or the count is reached; reports the ids of the 202s (Herald) to the parent.
 */
import { postJson } from '../lib/http';
import type { PublisherResult, PublisherStart } from '../lib/ipc';

async function run(start: PublisherStart): Promise<PublisherResult> {
  const ids: string[] = [];
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let issued = 0;
  let next = 0;
  const startedAt = Date.now();
  const deadline = startedAt + start.durationMs;
  const pad = 'x'.repeat(100);
  const worker = async () => {
    while (Date.now() < deadline && issued < start.count) {
      issued++;
      const userId = start.users[Math.floor(Math.random() * start.users.length)]!;
      const base = start.urls[next++ % start.urls.length]!;
      const t = Date.now();
      try {
        const answer =
          start.kind === 'herald'
            ? await postJson(
                `${base}/v1/notifications`,
                { to: { users: [userId] }, event: 'bench', payload: { i: issued, t, pad } },
                { authorization: `Bearer ${start.apiKey}` },
              )
            : await postJson(`${base}/publish`, { userId, payload: { i: issued, t, pad } });
        latencies.push(Date.now() - t);
        statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
        if (answer.status === 202) {
          ok++;
          if (start.kind === 'herald') ids.push((JSON.parse(answer.body) as { id: string }).id);
        } else failed++;
      } catch (error) {
        failed++;
        const key = error instanceof Error ? error.message.slice(0, 40) : 'error';
        statuses[key] = (statuses[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: start.concurrency }, worker));
  return { type: 'result', ok, failed, statuses, ids, startedAt, doneAt: Date.now(), latencies };
}

process.once('message', (start: PublisherStart) => {
  void run(start).then((result) => {
    process.send?.(result, () => process.exit(0));
  });
});
process.on('disconnect', () => process.exit(0));
