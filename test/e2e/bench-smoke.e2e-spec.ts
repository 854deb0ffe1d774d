import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths';

/**
 * Every benchmark scenario at smoke size (`--smoke`: a few dozen connections, a few messages, one
 * repetition), as `npm run bench` would run it, so the benchmarks cannot rot. Needs the build
 * (`npm run build` compiles bench/ into dist/bench).
 */
const root = repoRoot();
const SCENARIOS = ['idle', 'broadcast', 'unicast', 'ingest', 'catchup'] as const;

interface SmokeResult {
  scenario: string;
  smoke: boolean;
  result: { servers: string[]; complete: Record<string, boolean>; summary: unknown[]; runs: unknown[] };
}

function runScenario(scenario: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [join(root, 'dist', 'bench', 'bench', 'scenarios', `${scenario}.js`), '--smoke'],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 80_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('bench scenarios (smoke size)', () => {
  it.each(SCENARIOS)(
    'runs %s against Herald and the baselines, to completion',
    async (scenario) => {
      const file = join(root, 'dist', 'bench-results', `${scenario}.smoke.json`);
      rmSync(file, { force: true });
      const { code, output } = await runScenario(scenario);
      if (code !== 0) throw new Error(`${scenario} exited with ${code}:\n${output.slice(-4000)}`);
      expect(existsSync(file)).toBe(true);
      const doc = JSON.parse(readFileSync(file, 'utf8')) as SmokeResult;
      expect(doc.scenario).toBe(scenario);
      expect(doc.smoke).toBe(true);
      // ingest has no Socket.IO run (no publish API to load): it reports n/a for it.
      const expected = scenario === 'ingest' ? ['herald', 'raw-ws'] : ['herald', 'raw-ws', 'socket.io'];
      expect(doc.result.servers).toEqual(expected);
      for (const server of expected)
        expect({ server, complete: doc.result.complete[server] }).toEqual({ server, complete: true });
      expect(doc.result.runs.length).toBeGreaterThan(0);
      expect(output).toContain('median (min–max)');
    },
    90_000,
  );
});
