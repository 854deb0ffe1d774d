import { MAX_ACKS_PER_REQUEST } from '@herald/protocol';
import { BadRequestError } from '../common/errors';

/** Checks a `POST /v1/acks` body: `{ "ids": [...] }`, 1 to MAX_ACKS_PER_REQUEST strings. */
export function parseAcksRequest(body: unknown): string[] {
  const b =
    typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
  if (!b) throw new BadRequestError('body must be a JSON object', [{ field: '(body)', reason: 'must be an object' }]);
  const problems: { field: string; reason: string }[] = [];
  for (const key of Object.keys(b)) if (key !== 'ids') problems.push({ field: key, reason: 'unknown field' });
  const ids = b.ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_ACKS_PER_REQUEST) {
    problems.push({ field: 'ids', reason: `required: an array of 1-${MAX_ACKS_PER_REQUEST} notification ids` });
  } else {
    ids.forEach((id, index) => {
      if (typeof id !== 'string' || id.length === 0 || id.length > 64) {
        problems.push({ field: `ids[${index}]`, reason: 'must be a notification id (a string of 1-64 characters)' });
      }
    });
  }
  if (problems.length > 0) {
    throw new BadRequestError(problems.map((p) => `${p.field}: ${p.reason}`).join('; '), problems);
  }
  return ids as string[];
}
