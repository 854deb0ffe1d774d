import type { ServerName } from './args';
import { progress } from './log';
import { startTarget, Target, TargetOptions } from './targets';

/** What every scenario's JSON holds, whatever else it adds: the servers run and whether each completed. */
export interface ScenarioResult<Summary, Run> {
  servers: ServerName[];
  /** Per server: every connection made, every message received (Herald: and acked), every check passed. */
  complete: Record<string, boolean>;
  summary: Summary[];
  runs: Run[];
  notes: string[];
}

/** Starts a server, runs `body`, always stops it. */
export async function withTarget<T>(
  name: ServerName,
  options: TargetOptions,
  body: (target: Target) => Promise<T>,
): Promise<T> {
  progress(
    `starting ${name} (${options.processes} process${options.processes > 1 ? 'es' : ''}${options.nginx ? ', behind nginx' : ''})`,
  );
  const target = await startTarget(name, options);
  try {
    return await body(target);
  } finally {
    await target.stop();
  }
}

/** Sums CPU ms per group and divides by a count. */
export function perUnit(cpu: Record<string, number>, count: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [group, ms] of Object.entries(cpu)) out[group] = ms / Math.max(1, count);
  return out;
}
