import type { JsonValue } from '@herald/protocol';
import { BadRequestError } from '../common/errors';

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** `Idempotency-Key` header: absent, or 1-255 printable ASCII characters. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(header)) {
    throw new BadRequestError('Idempotency-Key must be 1-255 printable ASCII characters', [
      { field: 'Idempotency-Key', reason: 'must be 1-255 printable ASCII characters' },
    ]);
  }
  return header;
}

/** JSON with object keys sorted, so equal requests hash equally. */
export function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
