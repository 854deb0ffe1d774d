import type { JsonValue, PublishRequest } from '@herald/protocol';

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

/** Checks the form and builds the publish request, with a helpful message per field. Pure, so it is tested alone. */
export function buildRequest(draft: BroadcastDraft): DraftResult {
  const errors: Partial<Record<keyof BroadcastDraft, string>> = {};
  let to: PublishRequest['to'] = { all: true };
  if (draft.audience === 'topic') {
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(draft.topic.trim())) {
      errors.topic = 'A topic is 1–128 letters, digits or _ . : -';
    }
    to = { topic: draft.topic.trim() };
  } else if (draft.audience === 'users') {
    const users = [...new Set(draft.users.split(/[\s,]+/).filter((u) => u.length > 0))];
    const bad = users.find((u) => !/^[A-Za-z0-9_.@:-]{1,128}$/.test(u));
    if (users.length === 0) errors.users = 'List at least one user id (separated by commas, spaces or lines)';
    else if (bad) errors.users = `"${bad}" is not a user id (letters, digits and _ . @ : -)`;
    to = { users };
  }
  const event = draft.event.trim();
  if (event.length === 0 || event.length > 128) errors.event = 'The event name is required (at most 128 characters)';
  let payload: JsonValue | undefined;
  if (draft.payload.trim() !== '') {
    try {
      payload = JSON.parse(draft.payload) as JsonValue;
    } catch (error) {
      errors.payload = `Not valid JSON: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  let ttlSeconds: number | undefined;
  if (draft.ttlSeconds.trim() !== '') {
    ttlSeconds = Number(draft.ttlSeconds);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1)
      errors.ttlSeconds = 'TTL is a whole number of seconds, at least 1';
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    request: {
      to,
      event,
      ...(payload !== undefined ? { payload } : {}),
      ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
    },
  };
}
