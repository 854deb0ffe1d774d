#!/usr/bin/env node
// `npm run connect -- <userId> [--url http://localhost:8080] [--no-ack]`
// Connects to the running stack as a user, through Nginx: mints a token with the stack's API key,
// opens /ws, prints every frame as it arrives and acks each notification. Ctrl-C closes the socket.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const WebSocket = require('ws');

function fail(message) {
  process.stderr.write(`[connect] ${message}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
let userId;
let base;
let ack = true;
while (args.length > 0) {
  const arg = args.shift();
  if (arg === '--url') base = args.shift();
  else if (arg === '--no-ack') ack = false;
  else if (arg.startsWith('-'))
    fail(`unknown option ${arg}; usage: npm run connect -- <userId> [--url URL] [--no-ack]`);
  else userId = arg;
}
if (!userId) fail('usage: npm run connect -- <userId> [--url http://localhost:8080] [--no-ack]');

const readJson = (file) => {
  try {
    return JSON.parse(readFileSync(join(ROOT, '.stack', file), 'utf8'));
  } catch {
    return null;
  }
};
const state = readJson('state.json');
base ??= process.env.HERALD_URL ?? (state ? `http://localhost:${state.port}` : 'http://localhost:8080');
const apiKey = process.env.HERALD_API_KEY ?? readJson('secrets.json')?.apiKey;
if (!apiKey) fail('no API key: start the stack with npm run up, or set HERALD_API_KEY');

const log = (line) => process.stdout.write(`[${new Date().toISOString().slice(11, 23)}] ${line}\n`);

const response = await fetch(`${base}/v1/tokens`, {
  method: 'POST',
  headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
  body: JSON.stringify({ userId, ttlSeconds: 3600 }),
}).catch((error) => fail(`cannot reach ${base}: ${error.cause?.message ?? error.message} (is the stack up?)`));
const minted = await response.json().catch(() => null);
if (response.status !== 201 || !minted?.token)
  fail(`minting a token answered ${response.status}: ${JSON.stringify(minted)}`);

const url = `${base.replace(/^http/, 'ws')}/ws`;
const socket = new WebSocket(url, { headers: { authorization: `Bearer ${minted.token}` } });
socket.on('open', () => log(`connected to ${url} as ${userId}`));
socket.on('unexpected-response', (_request, res) => fail(`upgrade refused: HTTP ${res.statusCode}`));
socket.on('error', (error) => fail(error.message));
socket.on('message', (data) => {
  const frame = JSON.parse(data.toString());
  if (frame.type === 'welcome') {
    log(`welcome: connection ${frame.connectionId} on replica ${frame.replicaId}`);
  } else if (frame.type === 'notification') {
    log(
      `notification ${frame.id} event=${frame.event} attempt=${frame.attempt} payload=${JSON.stringify(frame.payload)}`,
    );
    if (ack) socket.send(JSON.stringify({ type: 'ack', id: frame.id }));
  } else if (frame.type === 'ack') {
    log(`acked ${frame.id} (${frame.status})`);
  } else {
    log(JSON.stringify(frame));
  }
});
socket.on('close', (code, reason) => {
  log(`closed ${code}${reason.length ? ` ${reason}` : ''}`);
  process.exit(code === 1000 ? 0 : 1);
});
process.once('SIGINT', () => socket.close(1000, 'bye'));
process.once('SIGTERM', () => socket.close(1000, 'bye'));
