/** Pieces the REST and admin schemas share (`publish.ts`, `rest.ts`, `admin.ts`); not exported by the package. */
import { z } from 'zod';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A body that is not a JSON object is read as `{}`: its fields are then reported missing one by one. */
export function objectOrEmpty(value: unknown): unknown {
  return isPlainObject(value) ? value : {};
}

export const isoTime = (description?: string) =>
  z.string().meta({ format: 'date-time', ...(description ? { description } : {}) });

/** Query parameters arrive as strings (or arrays, when repeated): `valid` sees only a single string. */
export function queryParam(valid: (value: string) => boolean, reason: string, message?: string) {
  return z.custom<string>((value) => typeof value === 'string' && valid(value), {
    error: reason,
    ...(message ? { params: { message } } : {}),
  });
}

/** A TTL in whole seconds from 1 (to `max`), with the reason the 400 gives. */
export function ttlSecondsOf(max?: number) {
  const reason = max === undefined ? 'must be a whole number from 1' : `must be a whole number from 1 to ${max}`;
  const ttl = z.number({ error: reason }).int({ error: reason, abort: true }).min(1, { error: reason, abort: true });
  return max === undefined ? ttl : ttl.max(max, { error: reason, abort: true });
}
