#!/usr/bin/env node
// Builds the demo end-user page (apps/demo) into dist/demo: the page, its styles, and one ES module
// bundling apps/demo/src/main.ts with the client SDK (libs/client). Nginx serves the folder at /demo/.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'apps', 'demo', 'src');
const out = join(root, 'dist', 'demo');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(source, 'main.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  sourcemap: true,
  minify: true,
  // The SDK from source, so the page never runs a stale build of it.
  alias: { '@herald/client': join(root, 'libs', 'client', 'src', 'index.ts') },
  tsconfig: join(root, 'apps', 'demo', 'tsconfig.json'),
  logLevel: 'warning',
});
for (const file of ['index.html', 'styles.css']) copyFileSync(join(source, file), join(out, file));
process.stdout.write(`built the demo page into ${out}\n`);
