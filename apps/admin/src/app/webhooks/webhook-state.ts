import type { AdminWebhook, WebhookAttempt, WebhookAttemptOutcome } from '@herald/protocol';

/** What an endpoint's state cell says: enabled, enabled but failing, or disabled (with its reason). */
export type EndpointState = 'enabled' | 'failing' | 'disabled';

export function stateOf(endpoint: Pick<AdminWebhook, 'enabled' | 'failingSince'>): EndpointState {
  if (!endpoint.enabled) return 'disabled';
  return endpoint.failingSince ? 'failing' : 'enabled';
}

/** Anything but a 2xx answer is a failure (it is retried, and counts toward disabling the endpoint). */
export function isFailure(attempt: Pick<WebhookAttempt, 'outcome'>): boolean {
  return attempt.outcome !== 'ok';
}

/** What each outcome means, for the outcome's tooltip. */
export const OUTCOME_MEANING: Record<WebhookAttemptOutcome, string> = {
  ok: 'answered 2xx',
  http: 'answered another status',
  redirect: 'answered a redirect, which is not followed',
  refused: 'not sent: its address is not allowed (HERALD_WEBHOOK_ALLOWED_CIDRS), or it has no URL or secret',
  network: 'no answer: the name, the connection or TLS failed',
  timeout: 'no answer in time',
};
