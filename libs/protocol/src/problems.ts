/**
 * Zod issues as Herald's 400 details: `{ field, reason }` per problem (`to.users[1]`, `(body)` for the body
 * itself, `unknown field` for a key a strict object does not know), and the error's message. The server's
 * validation pipe and the console's forms both read their schemas' failures through `reportProblems`.
 */
import type { z } from 'zod';
import { ErrorCode } from './constants';

export interface Problem {
  field: string;
  reason: string;
}

/** A problem reported alone, with its own message (and code: a payload over the limit is a 413). */
export interface ProblemParams {
  alone: { message: string; code?: typeof ErrorCode.PayloadTooLarge };
}

export function aloneProblem(message: string, code?: typeof ErrorCode.PayloadTooLarge): ProblemParams {
  return { alone: code ? { message, code } : { message } };
}

/** The reason of a `(body)` problem when there is no JSON body at all. */
export const NO_BODY_REASON = 'missing, or not sent as application/json';
export const NO_BODY_MESSAGE = 'no JSON body: send one with Content-Type: application/json';

export interface ProblemReport {
  code: typeof ErrorCode.BadRequest | typeof ErrorCode.PayloadTooLarge;
  message: string;
  details?: Problem[];
}

export interface ReportOptions {
  /** The error's message, instead of each problem as `field: reason`, joined by `; `. */
  message?: string;
  /** Only the first problem, its message `field reason` (query parameters: the first bad one is named). */
  firstOnly?: boolean;
  /** Keys an object does not know are named before its other problems (the default), or after them. */
  unknownFieldsFirst?: boolean;
}

type Issue = z.core.$ZodIssue;
type Key = PropertyKey;

interface Found {
  path: Key[];
  reason: string;
  /** For an unknown key: the path of the object that does not know it. */
  owner?: Key[];
  message?: string;
  alone?: ProblemParams['alone'];
}

/** The error a failed parse of `input` is answered with. */
export function reportProblems(issues: readonly Issue[], input: unknown, options: ReportOptions = {}): ProblemReport {
  const found: Found[] = [];
  collect(issues, input, [], found);
  const ordered = options.unknownFieldsFirst === false ? found : unknownFirst(found);
  const plain = ordered.filter((f) => f.alone === undefined);
  if (plain.length === 0 && ordered.length > 0) {
    const { alone, path, reason } = ordered[0]!;
    if (alone!.code === ErrorCode.PayloadTooLarge) return { code: alone!.code, message: alone!.message };
    return { code: ErrorCode.BadRequest, message: alone!.message, details: [{ field: fieldOf(path), reason }] };
  }
  const chosen = options.firstOnly ? plain.slice(0, 1) : plain;
  const details = chosen.map((f) => ({ field: fieldOf(f.path), reason: f.reason }));
  return { code: ErrorCode.BadRequest, message: messageOf(chosen, details, input, options), details };
}

function messageOf(found: Found[], details: Problem[], input: unknown, options: ReportOptions): string {
  if (options.message !== undefined) return options.message;
  if (options.firstOnly && details[0]) return found[0]!.message ?? `${details[0].field} ${details[0].reason}`;
  const body = details.find((d) => d.field === '(body)');
  if (body)
    return input === undefined && body.reason === NO_BODY_REASON ? NO_BODY_MESSAGE : 'body must be a JSON object';
  return details.map((d) => `${d.field}: ${d.reason}`).join('; ');
}

/** `to.users[1]`; `(body)` for the body itself. */
export function fieldOf(path: readonly Key[]): string {
  let field = '';
  for (const key of path)
    field += typeof key === 'number' ? `[${key}]` : field === '' ? String(key) : `.${String(key)}`;
  return field === '' ? '(body)' : field;
}

function collect(issues: readonly Issue[], input: unknown, prefix: Key[], out: Found[]): void {
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...path, key], reason: 'unknown field', owner: path });
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      collectUnion(issue.errors, issue.message, input, path, out);
    } else {
      const params = issue.code === 'custom' ? (issue.params as Partial<ProblemParams & { message: string }>) : {};
      out.push({
        path,
        reason: issue.message,
        ...(params?.message ? { message: params.message } : {}),
        ...(params?.alone ? { alone: params.alone } : {}),
      });
    }
  }
}

/**
 * A union of objects told apart by their keys (the audience: `users`, `topic` or `all`): the problems of the
 * one option whose keys the value has; with none or several, the union's own reason, after the keys no
 * option knows.
 */
function collectUnion(options: Issue[][], reason: string, input: unknown, path: Key[], out: Found[]): void {
  const value = valueAt(input, path);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const has = (key: Key) => Object.prototype.hasOwnProperty.call(value, key) && (value as never)[key] !== undefined;
    const chosen = options.filter((issues) =>
      issues.every((i) => i.code === 'unrecognized_keys' || i.path.length !== 1 || has(i.path[0]!)),
    );
    if (chosen.length === 1) {
      collect(chosen[0]!, input, path, out);
      return;
    }
    const unknownPer = options.map(
      (issues) => new Set(issues.flatMap((i) => (i.code === 'unrecognized_keys' && i.path.length === 0 ? i.keys : []))),
    );
    for (const key of unknownPer[0] ?? []) {
      if (unknownPer.every((keys) => keys.has(key)))
        out.push({ path: [...path, key], reason: 'unknown field', owner: path });
    }
  }
  out.push({ path, reason });
}

function valueAt(input: unknown, path: readonly Key[]): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<Key, unknown>)[key];
  }
  return value;
}

/** Each unknown key moved before the other problems of its object, in the order they were found. */
function unknownFirst(found: Found[]): Found[] {
  const ordered: Found[] = [];
  for (const f of found) {
    if (!f.owner) {
      ordered.push(f);
      continue;
    }
    const owner = f.owner;
    const at = ordered.findIndex(
      (o) => startsWith(o.path, owner) && !(o.owner && o.owner.length === owner.length && startsWith(o.owner, owner)),
    );
    if (at < 0) ordered.push(f);
    else ordered.splice(at, 0, f);
  }
  return ordered;
}

function startsWith(path: readonly Key[], prefix: readonly Key[]): boolean {
  return prefix.length <= path.length && prefix.every((key, i) => path[i] === key);
}
