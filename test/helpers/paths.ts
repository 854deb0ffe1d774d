import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HERALD_SERVER_MAIN } from './env';

/** The repository root, found from wherever this file runs (source under Jest, or compiled for bench/). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'herald') {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no herald package.json above ${__dirname}`);
    dir = parent;
  }
}

/** The server the replicas run: this checkout's build, unless HERALD_SERVER_MAIN names another. */
export const HERALD_MAIN = HERALD_SERVER_MAIN ?? join(repoRoot(), 'dist', 'apps', 'herald', 'main.js');
