import { createHash } from 'node:crypto';

/** The SHA-256 of an API key: what is compared, never the key itself. */
export function keyDigest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** How every API key's id begins; other publishers (the admin console) have ids without it. */
export const PUBLISHER_KEY_PREFIX = 'pk_';

/** The short, non-secret id of a publisher API key (`pk_` and 12 hex digits of its SHA-256): logs, database, limits. */
export function publisherKeyId(key: string): string {
  return `${PUBLISHER_KEY_PREFIX}${keyDigest(key).toString('hex').slice(0, 12)}`;
}
