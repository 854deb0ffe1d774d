#!/usr/bin/env node
// `npm test`: installs packages if missing, builds, then runs every test tier: the admin console's
// component tests (Vitest via ng test), then Jest's unit, integration (PostgreSQL, Redis) and end-to-end
// (replica processes, Nginx, Chromium) projects.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

function run(command, args) {
  const result = spawnSync(command, args, { stdio: 'inherit', env: process.env });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync('node_modules/.package-lock.json')) {
  console.log('> installing npm packages (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
console.log('> building');
run('npm', ['run', 'build']);
console.log("> running the console's component and service tests (Vitest, through ng test)");
run('npx', ['ng', 'test', 'admin']);
console.log('> running tests');
run('npx', ['jest', '--runInBand', ...process.argv.slice(2)]);
