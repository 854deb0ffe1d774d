// What `up` prints once the stack answers: where everything is, the keys, and how to try it.
import { join, relative } from 'node:path';

export function banner(options, keys, replicas, pg, rd) {
  const base = `http://localhost:${options.port}`;
  const logs = relative(process.cwd(), join(options.dir, 'logs')) || '.';
  const body = JSON.stringify({ to: { users: ['alice'] }, event: 'greeting', payload: { text: 'Hello, Alice!' } });
  const lines = [
    '',
    `Herald is up at ${base}`,
    '',
    `  REST API       ${base}/v1/`,
    `  WebSocket      ws://localhost:${options.port}/ws`,
    `  Health         ${base}/health/ready`,
    `  Admin console  ${base}/admin/`,
    `  Demo inbox     ${base}/demo/ (an end-user page: pick a user, publish to it, watch it arrive)`,
    ...replicas.map((r) => `  Replica        ${r.id} http://127.0.0.1:${r.port} (direct, not through Nginx)`),
    `  PostgreSQL     ${pg.description}`,
    `  Redis          ${rd.description}, key prefix ${options.redisPrefix}`,
    `  Logs           ${logs}/ (one file per process)`,
    '',
    `API key (publisher): ${keys.apiKey}`,
    `Admin password (console and /admin/api/): ${keys.adminPassword}`,
    '',
    'Connect as alice (prints each notification and acks it):',
    `  npm run connect -- alice`,
    '',
    'Publish a notification to alice:',
    `  curl -sS -X POST ${base}/v1/notifications -H 'Authorization: Bearer ${keys.apiKey}' -H 'Content-Type: application/json' -d '${body}'`,
    '',
    options.detach ? 'Stop: npm run down' : 'Stop: Ctrl-C here (or npm run down from another terminal)',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
