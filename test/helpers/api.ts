import type { NotificationView, PublishRequest, PublishResponse } from '@herald/protocol';
import jwt from 'jsonwebtoken';
import { createSecretKey, type KeyObject } from 'node:crypto';
import { TEST_API_KEY, TEST_JWT_SECRET } from './replica';

export interface HttpResult<T> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T>(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string>; apiKey?: string | null } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  const apiKey = options.apiKey === undefined ? TEST_API_KEY : options.apiKey;
  if (apiKey !== null) headers.authorization = `Bearer ${apiKey}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, headers: response.headers };
}

export async function publish(base: string, body: PublishRequest, idempotencyKey?: string): Promise<PublishResponse> {
  const result = await request<PublishResponse>(base, 'POST', '/v1/notifications', {
    body,
    headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
  });
  if (result.status !== 202) throw new Error(`publish answered ${result.status}: ${JSON.stringify(result.body)}`);
  return result.body;
}

export async function getNotification(base: string, id: string, query = ''): Promise<NotificationView> {
  const result = await request<NotificationView>(base, 'GET', `/v1/notifications/${id}${query}`);
  if (result.status !== 200) throw new Error(`GET notification answered ${result.status}`);
  return result.body;
}

/**
 * Secrets as keys, made once: given a string, jsonwebtoken tries it as a PEM private and public key before
 * it makes a secret key, on every sign (0.5 ms, which the bench's load clients paid per connection).
 */
const signingKeys = new Map<string, KeyObject>();

/** A user token signed like the customer's backend would sign it. */
export function userToken(userId: string, ttlSeconds = 3600, secret = TEST_JWT_SECRET): string {
  let key = signingKeys.get(secret);
  if (!key) signingKeys.set(secret, (key = createSecretKey(Buffer.from(secret, 'utf8'))));
  return jwt.sign({ sub: userId }, key, { algorithm: 'HS256', expiresIn: ttlSeconds });
}
