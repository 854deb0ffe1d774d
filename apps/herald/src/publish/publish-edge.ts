import { Logger } from '@nestjs/common';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { PublishResponse } from '@herald/protocol';
import { ApiKeyService } from '../auth/api-key.service';
import { errorReply } from '../common/http-error.filter';
import { parseJsonBody } from '../common/json-body';
import { requestIdFrom } from '../common/request-id';
import type { RequestLog } from '../common/request-log';
import { PublishService } from './publish.service';

/** The route the fast lane answers, exactly as publishers call it. */
const ROUTE = '/v1/notifications';
/** `application/json`, alone or with a UTF-8 charset: anything else takes the general path. */
const PLAIN_JSON = /^application\/json[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*"?utf-8"?[ \t]*)?$/i;

export interface PublishEdgeOptions {
  publish: PublishService;
  keys: ApiKeyService;
  log: RequestLog;
  replicaId: string;
  maxBodyBytes: number;
}

/**
 * The fast lane of `POST /v1/notifications`, the one route that takes load, in front of Express and Nest.
 * Their per-request machinery (middleware chain, router, guard and interceptor pipelines, response
 * helpers) cost more of a replica's CPU than storing the notification (docs/performance.md). This answers
 * the common shape of the request itself, with the same steps in the same order and the same shared code:
 * request id, request log and metric, replica header, the JSON body by body-parser's rules, the API key,
 * `PublishService.publish`, and the same error bodies and headers as the filter. Everything else (other
 * routes, a query string, a trailing slash, another content type or charset, a compressed body, no
 * `Content-Length`, a body over the limit) goes to Express untouched, which answers it as before.
 */
export function installPublishEdge(server: Server, options: PublishEdgeOptions): void {
  const listeners = server.listeners('request') as RequestListener[];
  if (listeners.length !== 1) throw new Error(`expected one request listener (Express), found ${listeners.length}`);
  const general = listeners[0]!;
  const edge = new PublishEdge(options);
  server.removeAllListeners('request');
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (!edge.takes(request)) general(request, response);
    else edge.answer(request, response);
  });
}

class PublishEdge {
  private readonly logger = new Logger('Http');

  constructor(private readonly options: PublishEdgeOptions) {}

  takes(request: IncomingMessage): boolean {
    if (request.method !== 'POST' || request.url !== ROUTE) return false;
    const { headers } = request;
    const length = headers['content-length'];
    if (length === undefined || headers['transfer-encoding'] !== undefined) return false;
    if (!(Number(length) <= this.options.maxBodyBytes)) return false;
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    const type = headers['content-type'];
    return type !== undefined && PLAIN_JSON.test(type);
  }

  answer(request: IncomingMessage, response: ServerResponse): void {
    const requestId = requestIdFrom(request.headers);
    let publisher: string | undefined;
    // A body refused before the route's own work is logged and counted as `(body)`, as Express does.
    let route = '(body)';
    this.options.log.track(request, response, () => ({ route, requestId, publisher }));
    response.setHeader('X-Request-Id', requestId);
    response.setHeader('X-Herald-Replica', this.options.replicaId);

    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.once('end', () => {
      const run = async (): Promise<{ body: PublishResponse; replayed: boolean }> => {
        const body = parseJsonBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), this.options.maxBodyBytes);
        route = ROUTE;
        const found = this.options.keys.publisherOf(request);
        publisher = found.keyId;
        const outcome = await this.options.publish.publish(
          found.keyId,
          this.options.publish.parseRequest(body),
          request.headers['idempotency-key'],
          requestId,
        );
        return { body: outcome.response, replayed: outcome.replayed };
      };
      run()
        .then(
          ({ body, replayed }) => {
            if (replayed) response.setHeader('Idempotent-Replayed', 'true');
            send(response, 202, body);
          },
          (error: unknown) => {
            const reply = errorReply(error, requestId, this.logger, request.method, ROUTE);
            for (const [name, value] of Object.entries(reply.headers)) response.setHeader(name, value);
            send(response, reply.status, reply.body);
          },
        )
        .catch((error: unknown) => {
          // Writing the answer failed (the socket is gone, say): end the exchange, never the process.
          this.logger.error({ message: 'answer not written', requestId, error: (error as Error).message });
          response.destroy();
        });
    });
    // A request cut off mid-body ends here: there is no one to answer, and the log records it aborted.
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  response.end(text);
}
