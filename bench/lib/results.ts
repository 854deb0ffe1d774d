import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../test/helpers/paths';

/** Results live in the build output (dist/ is ignored by git): dist/bench-results/<scenario>.json. */
export function resultsDir(): string {
  return join(repoRoot(), 'dist', 'bench-results');
}

/** Smoke runs write <scenario>.smoke.json, so a test run never replaces the results of a real run. */
export function resultFile(scenario: string, smoke = false): string {
  return join(resultsDir(), `${scenario}${smoke ? '.smoke' : ''}.json`);
}

export interface ResultDocument<T> {
  scenario: string;
  finishedAt: string;
  smoke: boolean;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  parameters: Record<string, unknown>;
  result: T;
}

export function writeResult<T>(
  scenario: string,
  smoke: boolean,
  parameters: Record<string, unknown>,
  result: T,
): string {
  mkdirSync(resultsDir(), { recursive: true });
  const doc: ResultDocument<T> = {
    scenario,
    finishedAt: new Date().toISOString(),
    smoke,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    parameters,
    result,
  };
  const file = resultFile(scenario, smoke);
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`\nresults: ${file}\n`);
  return file;
}

export function readResult<T>(scenario: string, smoke = false): ResultDocument<T> | undefined {
  const file = resultFile(scenario, smoke);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as ResultDocument<T>;
}
