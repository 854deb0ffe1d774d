import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { ADDRESS_REFUSED, checkTarget, guardedLookup, hostOf, type AddressGuard, type Resolve } from './address-guard';

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

/**
 * How one POST went. `ok` and `http` are answers (2xx, anything else but 3xx); the rest are failures:
 * `refused` by the address guard (or not an http(s) URL), `network`, `timeout`, or a `redirect`, which is
 * never followed (its status is kept).
 */
export type WebhookResponse =
  | { kind: 'ok' | 'http'; status: number; latencyMs: number; bodyExcerpt: string }
  | { kind: 'refused' | 'network' | 'timeout' | 'redirect'; error: string; latencyMs: number; status?: number };

export interface WebhookTransport {
  guard: AddressGuard;
  resolve: Resolve;
}

export const WEBHOOK_USER_AGENT = 'Herald-Webhooks/1';

/** The most of a response body kept (for the delivery log); the rest is not read. */
export const BODY_EXCERPT_BYTES = 4096;

/**
 * POSTs one webhook. Every connection is a fresh socket (`agent: false`): a pooled one would skip the
 * guarded lookup, which judges the resolved address at each connect. Redirects are not followed, since a
 * receiver could otherwise point Herald anywhere. `timeoutMs` bounds everything up to the status line;
 * once a status has arrived, the answer stands and the timer only cuts the excerpt short.
 */
export async function postWebhook(request: WebhookRequest, transport: WebhookTransport): Promise<WebhookResponse> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return { kind: 'refused', error: `not a URL: ${request.url}`, latencyMs: elapsed() };
  }
  // Node connects to a literal IP without calling `lookup`, so those (and the scheme) are judged here;
  // a name is judged by the guarded lookup, at connect time.
  const httpScheme = url.protocol === 'http:' || url.protocol === 'https:';
  if (!httpScheme || isIP(hostOf(url)) !== 0) {
    const refusal = await checkTarget(url, transport.guard, transport.resolve);
    if (refusal) return { kind: 'refused', error: refusal, latencyMs: elapsed() };
  }
  return send(url, request, transport, elapsed);
}

function send(
  url: URL,
  request: WebhookRequest,
  { guard, resolve }: WebhookTransport,
  elapsed: () => number,
): Promise<WebhookResponse> {
  return new Promise((settle) => {
    const headers: OutgoingHttpHeaders = {
      ...request.headers,
      'content-type': 'application/json',
      'user-agent': WEBHOOK_USER_AGENT,
      'content-length': Buffer.byteLength(request.body),
    };
    const options = { method: 'POST', headers, agent: false as const, lookup: guardedLookup(guard, resolve) };
    const outgoing = url.protocol === 'https:' ? httpsRequest(url, options) : httpRequest(url, options);
    let response: IncomingMessage | undefined;
    const excerpt: Buffer[] = [];
    let excerptBytes = 0;
    let done = false;

    const finish = (result: WebhookResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      response?.destroy();
      outgoing.destroy();
      settle(result);
    };
    const answered = (status: number): void => {
      const bodyExcerpt = Buffer.concat(excerpt).subarray(0, BODY_EXCERPT_BYTES).toString('utf8');
      finish({ kind: status >= 200 && status < 300 ? 'ok' : 'http', status, latencyMs: elapsed(), bodyExcerpt });
    };

    const timer = setTimeout(() => {
      if (response) answered(response.statusCode ?? 0);
      else finish({ kind: 'timeout', error: `no answer within ${request.timeoutMs} ms`, latencyMs: elapsed() });
    }, request.timeoutMs);

    outgoing.on('error', (error: NodeJS.ErrnoException) => finish(failure(error, elapsed())));
    outgoing.on('response', (incoming) => {
      response = incoming;
      const status = incoming.statusCode ?? 0;
      // A body cut short after the status line still leaves the status as the answer.
      incoming.on('error', () => answered(status));
      incoming.on('close', () => answered(status));
      if (status >= 300 && status < 400) {
        const location = incoming.headers.location;
        const error = location ? `redirect to ${location} not followed` : `redirect (${status}) not followed`;
        finish({ kind: 'redirect', status, error, latencyMs: elapsed() });
        return;
      }
      incoming.on('data', (chunk: Buffer) => {
        excerpt.push(chunk);
        excerptBytes += chunk.length;
        if (excerptBytes >= BODY_EXCERPT_BYTES) answered(status);
      });
      incoming.on('end', () => answered(status));
    });
    outgoing.end(request.body);
  });
}

function failure(error: NodeJS.ErrnoException, latencyMs: number): WebhookResponse {
  if (error.code === ADDRESS_REFUSED) return { kind: 'refused', error: error.message, latencyMs };
  const coded = error.code && !error.message.includes(error.code) ? `${error.message} (${error.code})` : error.message;
  return { kind: 'network', error: coded, latencyMs };
}
