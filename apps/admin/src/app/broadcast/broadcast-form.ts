import { PublishRequestSchema, reportProblems, type JsonValue, type PublishRequest } from '@herald/protocol';

export type AudienceKind = 'all' | 'topic' | 'users';

export interface BroadcastDraft {
  audience: AudienceKind;
  topic: string;
  users: string;
  event: string;
  payload: string;
  ttlSeconds: string;
}

export type DraftResult =
  { ok: true; request: PublishRequest } | { ok: false; errors: Partial<Record<keyof BroadcastDraft, string>> };

type FormErrors = Partial<Record<keyof BroadcastDraft, string>>;

/** The form's wording of the server's rules (PublishRequestSchema), by the field the schema names. */
function explain(field: string, request: PublishRequest): [keyof BroadcastDraft, string] | null {
  if (field.startsWith('to.users')) {
    const index = /^to\.users\[(\d+)\]$/.exec(field)?.[1];
    const users = 'users' in request.to ? request.to.users : [];
    return index === undefined
      ? ['users', 'List at least one user id (separated by commas, spaces or lines)']
      : ['users', `"${users[Number(index)]}" is not a user id (letters, digits and _ . @ : -)`];
  }
  if (field.startsWith('to.topic')) return ['topic', 'A topic is 1–128 letters, digits or _ . : -'];
  if (field === 'event') return ['event', 'The event name is required: 1–128 letters, digits or _ . : -'];
  if (field === 'ttlSeconds') return ['ttlSeconds', 'TTL is a whole number of seconds, at least 1'];
  if (field.startsWith('payload')) return ['payload', 'The payload cannot be sent as it is'];
  return null;
}

/**
 * Builds the publish request from the form and checks it with the server's own schema, with a helpful
 * message per field. Pure, so it is tested alone. (Limits set by the server's configuration, such as the
 * most recipients, are checked when it is sent.)
 */
export function buildRequest(draft: BroadcastDraft): DraftResult {
  const errors: FormErrors = {};
  let to: PublishRequest['to'] = { all: true };
  if (draft.audience === 'topic') to = { topic: draft.topic.trim() };
  else if (draft.audience === 'users') {
    to = { users: [...new Set(draft.users.split(/[\s,]+/).filter((u) => u.length > 0))] };
  }
  let payload: JsonValue | undefined;
  if (draft.payload.trim() !== '') {
    try {
      payload = JSON.parse(draft.payload) as JsonValue;
    } catch (error) {
      errors.payload = `Not valid JSON: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  const ttlSeconds = draft.ttlSeconds.trim() === '' ? undefined : Number(draft.ttlSeconds);
  const request: PublishRequest = {
    to,
    event: draft.event.trim(),
    ...(payload !== undefined ? { payload } : {}),
    ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
  };
  const checked = PublishRequestSchema.safeParse(request);
  if (!checked.success) {
    for (const { field } of reportProblems(checked.error.issues, request).details ?? []) {
      const [key, message] = explain(field, request) ?? [];
      if (key && message && errors[key] === undefined) errors[key] = message;
    }
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, request };
}
