/**
 * Every scenario, one after the other, each in its own process (arguments are passed on, e.g. --smoke
 * or --reps 5), then the charts. Stops at the first scenario that fails.
 *   npm run bench [-- --smoke]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { progress, runMain } from './lib/log';

export const SCENARIOS = ['idle', 'broadcast', 'unicast', 'ingest', 'catchup', 'storm'] as const;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  for (const scenario of SCENARIOS) {
    progress(`=== ${scenario} ===`);
    const run = spawnSync(process.execPath, [join(__dirname, 'scenarios', `${scenario}.js`), ...args], {
      stdio: 'inherit',
    });
    if (run.status !== 0) throw new Error(`scenario ${scenario} failed (exit ${run.status ?? run.signal})`);
  }
  const chart = spawnSync(process.execPath, [join(__dirname, 'chart.js')], { stdio: 'inherit' });
  if (chart.status !== 0) throw new Error('chart failed');
}

runMain(main);
