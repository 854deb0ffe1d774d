/** Pieces the REST and admin schemas share (`rest.ts`, `admin.ts`); not exported by the package. */
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
