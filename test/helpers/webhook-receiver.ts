import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookEvent } from '@herald/protocol';

/** One request a receiver took, as it arrived. */
export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  event: WebhookEvent;
  at: number;
}

/** What a path answers: a status (and headers), chosen per request. */
export type Answer = { status: number; headers?: Record<string, string> };

/**
 * A real HTTP server on 127.0.0.1 that records every webhook request and answers as its test says (200 by
 * default; `answer` per path, which may count what it has seen).
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private readonly answers = new Map<string, (request: ReceivedWebhook) => Answer>();

  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let event: WebhookEvent;
      try {
        event = JSON.parse(body) as WebhookEvent;
      } catch {
        event = { type: 'notification.acked', timestamp: '', data: { items: [] } };
      }
      const path = req.url ?? '/';
      const record = { path, headers: req.headers, body, event, at: Date.now() };
      this.received.push(record);
      const answer = this.answers.get(path)?.(record) ?? { status: 200 };
      res.writeHead(answer.status, answer.headers).end('ok');
    });
  });

  private constructor() {}

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path: string, host = '127.0.0.1'): string {
    return `http://${host}:${this.port}${path}`;
  }

  answer(path: string, answer: (request: ReceivedWebhook) => Answer): void {
    this.answers.set(path, answer);
  }

  on(path: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
