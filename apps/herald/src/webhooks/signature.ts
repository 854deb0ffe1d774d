import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures as Standard Webhooks specifies them (https://www.standardwebhooks.com), so receivers
 * can verify with any of its libraries: HMAC-SHA256 over `id.timestamp.body`, sent as `v1,<base64>`.
 */

/** The headers a signed delivery carries. */
export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

const SECRET_PREFIX = 'whsec_';
const SECRET_BYTES = 24;

/** How far a receiver's clock may be from the sender's, by default, before a delivery counts as replayed. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** A new secret: `whsec_` and 24 random bytes in base64, the form Standard Webhooks libraries take. */
export function newSigningSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

/** `v1,<base64 HMAC-SHA256>` of `${msgId}.${timestampSeconds}.${body}` under the secret's key. */
export function sign(secret: string, msgId: string, timestampSeconds: number, body: string): string {
  return `v1,${digest(secret, msgId, timestampSeconds, body).toString('base64')}`;
}

/** Every secret's signature, space-separated: during a rotation the new and the previous secret both sign. */
export function signatureHeader(
  secrets: readonly string[],
  msgId: string,
  timestampSeconds: number,
  body: string,
): string {
  if (secrets.length === 0) throw new Error('a webhook signature needs at least one secret');
  return secrets.map((secret) => sign(secret, msgId, timestampSeconds, body)).join(' ');
}

/**
 * The receiver's check: true when any `v1,` signature in the header matches (compared in constant time)
 * and the timestamp is within `toleranceSeconds` of `nowSeconds` either way (a replayed or pre-dated
 * delivery is refused).
 */
export function verify(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  nowSeconds: number,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): boolean {
  if (!/^\d{1,15}$/.test(headers.timestamp)) return false;
  const timestamp = Number(headers.timestamp);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = digest(secret, headers.id, timestamp, body);
  return headers.signature.split(' ').some((candidate) => {
    if (!candidate.startsWith('v1,')) return false;
    const given = Buffer.from(candidate.slice(3), 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

function digest(secret: string, msgId: string, timestampSeconds: number, body: string): Buffer {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new Error(`a webhook timestamp is whole seconds since the epoch, not ${timestampSeconds}`);
  }
  return createHmac('sha256', secretKey(secret)).update(`${msgId}.${timestampSeconds}.${body}`).digest();
}

/** The key is the base64 after `whsec_` (the prefix is optional, as in the reference libraries). */
function secretKey(secret: string): Buffer {
  const key = Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
  if (key.length === 0) throw new Error('a webhook secret needs a non-empty base64 key after whsec_');
  return key;
}
