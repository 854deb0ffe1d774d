import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { NO_BODY_MESSAGE, NO_BODY_REASON } from '@herald/protocol';
import { BadRequestError, HeraldError, PayloadTooLargeError } from './errors';

/** Set on a request whose body was refused before its route ran: the request log counts it as `(body)`. */
export const BODY_REFUSED = Symbol('bodyRefused');

/** The error for a body refused before any route ran. */
export function bodyRefusal(type: string, maxBodyBytes: number): HeraldError {
  if (type === 'entity.too.large') return new PayloadTooLargeError(`request body exceeds ${maxBodyBytes} bytes`);
  if (type === 'entity.parse.failed') {
    return new BadRequestError('request body is not valid JSON', [{ field: '(body)', reason: 'not valid JSON' }]);
  }
  return new BadRequestError('request body could not be read', [{ field: '(body)', reason: type }]);
}

/** The answer to a request that needs a JSON body and came without one. */
export function noJsonBody(): BadRequestError {
  return new BadRequestError(NO_BODY_MESSAGE, [{ field: '(body)', reason: NO_BODY_REASON }]);
}

const JSON_TYPE = /^application\/(?:[a-z0-9!#$&^_.-]+\+)?json$/;
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;

/**
 * Fastify's only body parser: JSON, by the rules the service documents (docs/protocol.md, REST bodies).
 * `application/json` and `application/*+json`, UTF-8 only; `gzip` and `deflate` are inflated, with the size
 * limit on the inflated body; any other encoding or charset is refused with 400, a body over the limit with
 * 413. A body of another type is not read, so the route finds none and says which type to send.
 */
export function installJsonBody(fastify: FastifyInstance, maxBodyBytes: number): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (request, payload, done) => {
    readJsonBody(request.raw, payload, maxBodyBytes).then(
      (body) => done(null, body),
      (error: Error) => {
        (request.raw as IncomingMessage & { [BODY_REFUSED]?: boolean })[BODY_REFUSED] = true;
        done(error, undefined);
      },
    );
  });
}

function readJsonBody(request: IncomingMessage, payload: Readable, maxBodyBytes: number): Promise<unknown> {
  const type = String(request.headers['content-type'] ?? '');
  const media = type.split(';', 1)[0]!.trim().toLowerCase();
  if (!JSON_TYPE.test(media)) return Promise.resolve(undefined);
  const charset = CHARSET.exec(type)?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return Promise.reject(bodyRefusal('charset.unsupported', maxBodyBytes));
  }
  const encoding = String(request.headers['content-encoding'] ?? 'identity').toLowerCase();
  let source: Readable;
  if (encoding === 'identity') {
    if (Number(request.headers['content-length']) > maxBodyBytes) {
      return Promise.reject(bodyRefusal('entity.too.large', maxBodyBytes));
    }
    source = payload;
  } else if (encoding === 'gzip' || encoding === 'deflate') {
    source = payload.pipe(encoding === 'gzip' ? createGunzip() : createInflate());
  } else {
    return Promise.reject(bodyRefusal('encoding.unsupported', maxBodyBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: HeraldError): void => {
      source.removeAllListeners('data');
      if (source !== payload) source.destroy();
      reject(error);
    };
    source.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) fail(bodyRefusal('entity.too.large', maxBodyBytes));
      else chunks.push(chunk);
    });
    source.once('error', () => fail(bodyRefusal(source === payload ? 'request.aborted' : 'encoding.invalid', 0)));
    source.once('end', () => {
      try {
        resolve(parseJsonBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), maxBodyBytes));
      } catch (error) {
        fail(error as HeraldError);
      }
    });
  });
}

const WHITESPACE = /^[ \t\n\r]*/;

/**
 * A JSON body by the strict rules: empty is `{}`, a leading UTF-8 byte order mark is dropped, and the text
 * must open with `{` or `[` after whitespace. Throws the refusal otherwise.
 */
function parseJsonBody(bytes: Buffer, maxBodyBytes: number): unknown {
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const text = bytes.toString('utf8', start);
  if (text.length === 0) return {};
  const first = text[WHITESPACE.exec(text)![0].length];
  if (first !== '{' && first !== '[') throw bodyRefusal('entity.parse.failed', maxBodyBytes);
  try {
    return JSON.parse(text);
  } catch {
    throw bodyRefusal('entity.parse.failed', maxBodyBytes);
  }
}
