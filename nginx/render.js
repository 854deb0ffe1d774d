#!/usr/bin/env node
// Renders nginx/nginx.conf.template for a target. One template, two targets, so the docker-compose
// config and the local one cannot drift apart:
//   compose  the committed nginx/compose/nginx.conf (replicas herald-1/herald-2 on the compose network)
//   local    written by the one-command stack and the tests (loopback ports, paths in a folder)
// Usage: node nginx/render.js compose            (rewrites nginx/compose/nginx.conf)
//        node nginx/render.js compose --check    (exits 1 if the committed copy is stale)
'use strict';

const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const TEMPLATE = join(__dirname, 'nginx.conf.template');
const COMPOSE_OUTPUT = join(__dirname, 'compose', 'nginx.conf');
const PLACEHOLDER_ROOT = join(__dirname, 'placeholder');
/** Where `npm run build` puts the demo end-user page. */
const DEMO_ROOT = join(__dirname, '..', 'dist', 'demo');

/** The service's default HERALD_MAX_BODY_BYTES; a test keeps the two equal. */
const DEFAULT_MAX_BODY_BYTES = 262144;
const WS_TIMEOUT = '3600s';
const MAX_FAILS = 2;
/** Per client address: open /ws and /v1/stream connections, and new ones per second with a burst. */
const DEFAULT_CONNECTIONS_PER_IP = 1000;
const DEFAULT_HANDSHAKES_PER_SECOND = 50;
const DEFAULT_HANDSHAKE_BURST = 200;

/** The `map $http_origin` body for an allowlist like HERALD_ALLOWED_ORIGINS (`*` allows any). */
function originMap(origins) {
  const list = (origins ?? ['*']).map((o) => o.trim()).filter((o) => o.length > 0);
  if (list.length === 0 || list.includes('*')) return '        default 0;';
  for (const origin of list) {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[A-Za-z0-9._:[\]-]+$/.test(origin)) {
      throw new Error(`not an origin (scheme://host[:port]): ${JSON.stringify(origin)}`);
    }
  }
  const escape = (origin) => origin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return ['        default 1;', "        '' 0;", ...list.map((origin) => `        "~*^${escape(origin)}$" 0;`)].join(
    '\n',
  );
}
const FAIL_TIMEOUT = '10s';
/**
 * Connections the kernel queues for Nginx before a worker accepts them, as the replicas' HERALD_LISTEN_BACKLOG:
 * Nginx's own 511 overflows when every client reconnects at once after a restart (ADR 0013).
 */
const LISTEN_BACKLOG = 4096;

/**
 * @typedef {object} EdgeOptions
 * @property {string | string[]} listen what `listen` gets: a port or address:port (several for IPv4 and IPv6)
 * @property {string[]} upstreams       host:port of each replica
 * @property {string} adminRoot         folder with the console's index.html
 * @property {string} [demoRoot]        folder with the demo page (default: the build's dist/demo)
 * @property {number} [maxBodyBytes]    HERALD_MAX_BODY_BYTES of the replicas
 * @property {string} [dir]             local only: folder for pid, logs and temp files
 * @property {string} [user]            local only: user the workers run as when the master is root
 * @property {string[]} [allowedOrigins] browser origins allowed on /ws and /v1/stream (default: any)
 * @property {number} [connectionsPerIp] open /ws and /v1/stream connections per client address
 * @property {number} [handshakesPerSecond] new /ws and /v1/stream connections per second per client address
 * @property {number} [handshakeBurst]   handshakes per client address allowed at once above that rate
 * @property {number} [workerProcesses] worker processes (default: auto, one per core)
 * @property {number} [workerConnections] connections per worker (default 8192; a proxied WebSocket holds two)
 */

/** @param {'compose' | 'local'} target @param {EdgeOptions} options @returns {string} */
function render(target, options) {
  if (!options.upstreams || options.upstreams.length === 0) throw new Error('at least one upstream is needed');
  const local = target === 'local';
  if (local && !options.dir) throw new Error('a local render needs a folder (dir) for its pid, logs and temp files');
  const dir = options.dir;
  const values = {
    TARGET: target,
    USER: local && options.user ? `user ${options.user};\n` : '',
    WORKER_PROCESSES: String(options.workerProcesses ?? 'auto'),
    WORKER_RLIMIT_NOFILE: '20000',
    WORKER_CONNECTIONS: String(options.workerConnections ?? 8192),
    PID_FILE: local ? join(dir, 'nginx.pid') : '/var/run/nginx.pid',
    ERROR_LOG: local ? join(dir, 'error.log') : '/var/log/nginx/error.log',
    ACCESS_LOG: local ? join(dir, 'access.log') : '/var/log/nginx/access.log',
    TEMP_PATHS: local
      ? ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
          .map((kind) => `    ${kind}_temp_path ${join(dir, 'tmp', kind)};`)
          .join('\n') + '\n'
      : '',
    MAX_FAILS: String(MAX_FAILS),
    FAIL_TIMEOUT,
    UPSTREAM_SERVERS: options.upstreams
      .map((server) => `        server ${server} max_fails=${MAX_FAILS} fail_timeout=${FAIL_TIMEOUT};`)
      .join('\n'),
    STREAM_UPSTREAM_SERVERS: options.upstreams.map((server) => `        server ${server} max_fails=0;`).join('\n'),
    UPSTREAM_TRIES: String(options.upstreams.length),
    LISTEN: [options.listen]
      .flat()
      .map((address) => `        listen ${address} backlog=${LISTEN_BACKLOG};`)
      .join('\n'),
    MAX_BODY_BYTES: String(options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
    WS_TIMEOUT,
    ADMIN_ROOT: options.adminRoot.replace(/\/+$/, ''),
    DEMO_ROOT: (options.demoRoot ?? DEMO_ROOT).replace(/\/+$/, ''),
    ORIGIN_MAP: originMap(options.allowedOrigins),
    CONNECTIONS_PER_IP: String(options.connectionsPerIp ?? DEFAULT_CONNECTIONS_PER_IP),
    HANDSHAKES_PER_SECOND: String(options.handshakesPerSecond ?? DEFAULT_HANDSHAKES_PER_SECOND),
    HANDSHAKE_BURST: String(options.handshakeBurst ?? DEFAULT_HANDSHAKE_BURST),
  };
  const text = readFileSync(TEMPLATE, 'utf8').replace(/\{\{([A-Z_]+)\}\}/g, (_, name) => {
    if (!(name in values)) throw new Error(`nginx.conf.template uses {{${name}}}, which render.js does not fill`);
    return values[name];
  });
  return text;
}

/**
 * The docker-compose stack: the replicas at their fixed addresses (docker-compose.yml), not by name, so
 * Nginx starts even while a replica container is down; the console is baked into the edge image.
 */
function renderCompose() {
  return render('compose', {
    listen: '8080',
    upstreams: ['172.28.0.11:3000', '172.28.0.12:3000'],
    adminRoot: '/usr/share/nginx/html/admin',
    demoRoot: '/usr/share/nginx/html/demo',
  });
}

module.exports = {
  render,
  renderCompose,
  COMPOSE_OUTPUT,
  PLACEHOLDER_ROOT,
  DEMO_ROOT,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_CONNECTIONS_PER_IP,
  DEFAULT_HANDSHAKES_PER_SECOND,
  DEFAULT_HANDSHAKE_BURST,
  WS_TIMEOUT,
};

if (require.main === module) {
  const [target, flag] = process.argv.slice(2);
  if (target !== 'compose') {
    process.stderr.write('usage: node nginx/render.js compose [--check]\n(local configs are rendered by npm run up)\n');
    process.exit(2);
  }
  const fresh = renderCompose();
  if (flag === '--check') {
    const committed = readFileSync(COMPOSE_OUTPUT, 'utf8');
    if (committed !== fresh) {
      process.stderr.write(`${COMPOSE_OUTPUT} is stale: run npm run nginx:render\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(COMPOSE_OUTPUT, fresh);
    process.stdout.write(`wrote ${COMPOSE_OUTPUT}\n`);
  }
}
