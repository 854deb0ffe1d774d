import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '../../../../test/helpers/wait';
import { AddressGuard, type Resolve } from './address-guard';
import { BODY_EXCERPT_BYTES, postWebhook, type WebhookRequest } from './webhook-http';

interface Hit {
  method: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

interface TestServer {
  port: number;
  url: string;
  hits: Hit[];
  openConnections(): Promise<number>;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records every request and lets `handle` answer it (or not). */
async function startServer(handle: (request: IncomingMessage, response: ServerResponse) => void): Promise<TestServer> {
  const hits: Hit[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      hits.push({ method: request.method, headers: request.headers, body: Buffer.concat(chunks).toString() });
      handle(request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}/hook`,
    hits,
    openConnections: () =>
      new Promise((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n)))),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Answers `address` for every name. */
function resolvingTo(address: string): Resolve {
  return async () => [{ address, family: address.includes(':') ? 6 : 4 }];
}

/** A resolver that must not be asked (literal IP hosts never are). */
const unused: Resolve = (hostname) => Promise.reject(new Error(`resolver asked for ${hostname}`));

function webhook(url: string, overrides: Partial<WebhookRequest> = {}): WebhookRequest {
  return { url, headers: { 'webhook-id': 'msg_1' }, body: '{"type":"test"}', timeoutMs: 5_000, ...overrides };
}

function socketHandles(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'TCPSocketWrap').length;
}

describe('postWebhook', () => {
  const loopbackAllowed = { guard: new AddressGuard(['127.0.0.1/32']), resolve: unused };
  const byDefault = new AddressGuard([]);
  const servers: TestServer[] = [];
  const serve = async (handle: (request: IncomingMessage, response: ServerResponse) => void) => {
    const server = await startServer(handle);
    servers.push(server);
    return server;
  };

  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  it('POSTs the JSON body with its headers, answers ok for a 2xx and leaves no timer running', async () => {
    const server = await serve((_, response) => response.writeHead(200).end('thanks'));
    const started = jest.spyOn(global, 'setTimeout');
    const cleared = jest.spyOn(global, 'clearTimeout');
    const result = await postWebhook(webhook(server.url), loopbackAllowed);
    expect(result).toMatchObject({ kind: 'ok', status: 200, bodyExcerpt: 'thanks' });
    const timersLeft = started.mock.results.filter(({ value }) => !cleared.mock.calls.some(([t]) => t === value));
    expect(timersLeft).toEqual([]);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(server.hits).toEqual([
      {
        method: 'POST',
        headers: expect.objectContaining({
          'content-type': 'application/json',
          'user-agent': 'Herald-Webhooks/1',
          'content-length': '15',
          'webhook-id': 'msg_1',
        }) as IncomingHttpHeaders,
        body: '{"type":"test"}',
      },
    ]);
  });

  it('connects to a name through the guarded lookup, keeping the name as the Host', async () => {
    const server = await serve((_, response) => response.writeHead(204).end());
    const transport = { guard: loopbackAllowed.guard, resolve: resolvingTo('127.0.0.1') };
    const result = await postWebhook(webhook(`http://hooks.example.test:${server.port}/hook`), transport);
    expect(result).toMatchObject({ kind: 'ok', status: 204, bodyExcerpt: '' });
    expect(server.hits[0]?.headers.host).toBe(`hooks.example.test:${server.port}`);
  });

  it('judges the address at every connection: no pooled socket skips the check when a name rebinds', async () => {
    const server = await serve((_, response) => response.writeHead(200).end());
    const answers = ['127.0.0.1', '10.0.0.1'];
    const rebinding: Resolve = async () => [{ address: answers.shift() ?? '10.0.0.1', family: 4 }];
    const transport = { guard: loopbackAllowed.guard, resolve: rebinding };
    const url = `http://hooks.example.test:${server.port}/hook`;
    await expect(postWebhook(webhook(url), transport)).resolves.toMatchObject({ kind: 'ok' });
    await expect(postWebhook(webhook(url), transport)).resolves.toMatchObject({
      kind: 'refused',
      error: expect.stringContaining('hooks.example.test resolves to 10.0.0.1, a private address') as string,
    });
    expect(server.hits).toHaveLength(1);
  });

  it('answers http with the status and an excerpt for any other status', async () => {
    const server = await serve((_, response) => response.writeHead(500).end('database down'));
    const result = await postWebhook(webhook(server.url), loopbackAllowed);
    expect(result).toMatchObject({ kind: 'http', status: 500, bodyExcerpt: 'database down' });
  });

  it('keeps at most 4 KiB of a long body and stops reading it', async () => {
    const server = await serve((_, response) => {
      response.writeHead(400);
      response.write('x'.repeat(1024 * 1024));
      // Never ended: only a reader that stops after the excerpt comes back.
    });
    const result = await postWebhook(webhook(server.url), loopbackAllowed);
    expect(result).toMatchObject({ kind: 'http', status: 400, bodyExcerpt: 'x'.repeat(BODY_EXCERPT_BYTES) });
    await waitFor('the server to see the connection closed', async () => (await server.openConnections()) === 0);
  });

  it('does not follow a redirect, and names where it pointed', async () => {
    const target = await serve((_, response) => response.writeHead(200).end());
    const server = await serve((_, response) => response.writeHead(302, { location: target.url }).end());
    const result = await postWebhook(webhook(server.url), loopbackAllowed);
    expect(result).toMatchObject({ kind: 'redirect', status: 302, error: `redirect to ${target.url} not followed` });
    expect(server.hits).toHaveLength(1);
    expect(target.hits).toHaveLength(0);
  });

  it('times out a server that never answers, and leaves no socket open', async () => {
    const server = await serve(() => undefined);
    const sockets = socketHandles();
    const result = await postWebhook(webhook(server.url, { timeoutMs: 200 }), loopbackAllowed);
    expect(result).toMatchObject({ kind: 'timeout', error: 'no answer within 200 ms' });
    expect(result.latencyMs).toBeGreaterThanOrEqual(190);
    expect(server.hits).toHaveLength(1);
    await waitFor('the server to see the connection closed', async () => (await server.openConnections()) === 0);
    // At most as many as before: sockets of earlier tests may still be closing when counted.
    await waitFor('the sockets of the request to close', () => socketHandles() <= sockets);
  });

  it('keeps the status that arrived before the timeout, with the body read so far', async () => {
    const server = await serve((_, response) => {
      response.writeHead(202);
      response.write('accepted, and then');
    });
    const result = await postWebhook(webhook(server.url, { timeoutMs: 300 }), loopbackAllowed);
    expect(result).toMatchObject({ kind: 'ok', status: 202, bodyExcerpt: 'accepted, and then' });
  });

  it('answers network when nothing listens', async () => {
    const server = await serve(() => undefined);
    await server.close();
    const result = await postWebhook(webhook(server.url), loopbackAllowed);
    expect(result).toMatchObject({ kind: 'network', error: expect.stringContaining('ECONNREFUSED') as string });
  });

  it('refuses a literal loopback address with the default guard, before connecting', async () => {
    const server = await serve((_, response) => response.writeHead(200).end());
    const result = await postWebhook(webhook(server.url), { guard: byDefault, resolve: unused });
    expect(result).toMatchObject({
      kind: 'refused',
      error: '127.0.0.1 is a loopback address (127.0.0.0/8); set HERALD_WEBHOOK_ALLOWED_CIDRS to allow it',
    });
    expect(server.hits).toHaveLength(0);
  });

  it.each([
    ['10.0.0.1', 'a private address (10.0.0.0/8)'],
    ['169.254.169.254', 'a link-local, cloud metadata address (169.254.0.0/16)'],
    ['::ffff:a00:1', 'a private address (10.0.0.0/8)'],
  ])('refuses a name that resolves to %s', async (address, reason) => {
    const result = await postWebhook(webhook('http://hooks.example.test/hook'), {
      guard: byDefault,
      resolve: resolvingTo(address),
    });
    const subject = address.startsWith('::ffff:') ? `${address} (10.0.0.1)` : address;
    expect(result).toMatchObject({
      kind: 'refused',
      error: `hooks.example.test resolves to ${subject}, ${reason}; set HERALD_WEBHOOK_ALLOWED_CIDRS to allow it`,
    });
  });

  it('guards https connections the same way', async () => {
    const result = await postWebhook(webhook('https://hooks.example.test/hook'), {
      guard: byDefault,
      resolve: resolvingTo('192.168.0.1'),
    });
    expect(result).toMatchObject({
      kind: 'refused',
      error: expect.stringContaining('hooks.example.test resolves to 192.168.0.1, a private address') as string,
    });
  });

  it('refuses an IPv4-mapped IPv6 literal as the IPv4 address it maps', async () => {
    const server = await serve((_, response) => response.writeHead(200).end());
    const result = await postWebhook(webhook(`http://[::ffff:127.0.0.1]:${server.port}/`), {
      guard: byDefault,
      resolve: unused,
    });
    expect(result).toMatchObject({
      kind: 'refused',
      error: expect.stringMatching(
        /^::ffff:7f00:1 \(127\.0\.0\.1\) is a loopback address \(127\.0\.0\.0\/8\)/,
      ) as string,
    });
    expect(server.hits).toHaveLength(0);
  });

  it('refuses anything but an http or https URL', async () => {
    await expect(postWebhook(webhook('file:///etc/passwd'), loopbackAllowed)).resolves.toMatchObject({
      kind: 'refused',
      error: 'only http: and https: URLs are allowed, not file:',
    });
    await expect(postWebhook(webhook('not a url'), loopbackAllowed)).resolves.toMatchObject({
      kind: 'refused',
      error: 'not a URL: not a url',
    });
  });
});
