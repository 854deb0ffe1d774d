import type { NextFunction, Request, Response } from 'express';
import { BadRequestError, HeraldError, PayloadTooLargeError } from './errors';
import { requestIdOf } from './request-id';
import { toErrorResponse } from './http-error.filter';

/** The error for a body refused before any route ran, by body-parser's error `type`. */
export function bodyRefusal(type: string | undefined, maxBodyBytes: number): HeraldError {
  if (type === 'entity.too.large') return new PayloadTooLargeError(`request body exceeds ${maxBodyBytes} bytes`);
  if (type === 'entity.parse.failed') {
    return new BadRequestError('request body is not valid JSON', [{ field: '(body)', reason: 'not valid JSON' }]);
  }
  return new BadRequestError('request body could not be read', [
    { field: '(body)', reason: String(type ?? 'unreadable') },
  ]);
}

/** Body-parser errors happen before Nest's filters: answer them in the same error shape. */
export function bodyErrorHandler(maxBodyBytes: number) {
  return (error: unknown, request: Request, response: Response, next: NextFunction): void => {
    if (!error) return next();
    const { status, body } = toErrorResponse(
      bodyRefusal((error as { type?: string }).type, maxBodyBytes),
      requestIdOf(request),
    );
    response.locals.bodyRefused = true; // for the request log: refused before any route matched
    response.status(status).json(body);
  };
}

const WHITESPACE = /^[ \t\n\r]*/;

/**
 * A JSON body as body-parser's strict `json()` reads it (the rules the Express routes follow): empty is
 * `{}`, a leading UTF-8 byte order mark is dropped, and the text must open with `{` or `[` after
 * whitespace. Throws the same refusal otherwise.
 */
export function parseJsonBody(bytes: Buffer, maxBodyBytes: number): unknown {
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
