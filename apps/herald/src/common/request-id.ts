import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, Response } from 'express';

const ACCEPTED = /^[A-Za-z0-9._:-]{1,128}$/;
const KEY = Symbol('requestId');

type WithId = Request & { [KEY]?: string };

/** The request's id: its `X-Request-Id` when that is sane, else a new one. */
export function requestIdFrom(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && ACCEPTED.test(given) ? given : randomUUID();
}

/** Takes `X-Request-Id` when it is sane, makes one when not, and echoes it on the response. */
export function requestIdMiddleware(request: Request, response: Response, next: NextFunction): void {
  const id = requestIdFrom(request.headers);
  (request as WithId)[KEY] = id;
  response.setHeader('X-Request-Id', id);
  next();
}

export function requestIdOf(request: Request): string {
  return (request as WithId)[KEY] ?? 'unknown';
}
