#!/usr/bin/env node
// The whole Herald stack on a developer's machine, in one command:
//
//   npm run up                 install if needed, build, PostgreSQL + Redis (reused or private), migrations,
//                              two replicas and Nginx on http://localhost:8080; Ctrl-C stops what it started
//   npm run up -- --detach     the same, but returns once everything answers; `npm run down` stops it
//   npm run down               stops what the last `up` started, and nothing else
//
// Options (after `--`): --port 8080  --replicas 2  --database herald  --redis-prefix herald
//                       --private-services (never reuse the servers on 5432/6379)  --detach
//                       --postgres-url URL  --redis-url URL (use these servers instead)
//                       --redis-cluster (a private 3-master, 3-replica Redis Cluster instead of one Redis)
// Everything it makes lives in .stack/ : logs/, secrets.json, state.json, nginx/, and private
// postgres/, redis/ or redis-cluster/ data when those are started here.
import { down, status, up } from './stack/commands.mjs';
import { parseArgs } from './stack/options.mjs';
import { fail, StackError } from './stack/output.mjs';

const options = parseArgs(process.argv.slice(2));
try {
  if (options.command === 'up') await up(options);
  else if (options.command === 'down') await down(options);
  else status(options);
} catch (error) {
  if (error instanceof StackError) fail(error.message);
  throw error;
}
