import type { AdminWebhook, WebhookAttempt } from '@herald/protocol';

let seq = 0;

/** An attempt of a webhook message, answered 200 unless told (for the webhooks specs). */
export function attempt(over: Partial<WebhookAttempt> = {}): WebhookAttempt {
  seq += 1;
  return {
    id: seq,
    messageId: `msg_${seq}`,
    type: 'notification.acked',
    attempt: 1,
    at: '2026-12-08T10:00:00.000Z',
    outcome: 'ok',
    statusCode: 200,
    latencyMs: 12,
    error: null,
    ...over,
  };
}

/** An enabled endpoint that has not failed (for the webhooks specs). */
export function endpoint(over: Partial<AdminWebhook> = {}): AdminWebhook {
  seq += 1;
  return {
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    url: `https://api.example.com/hooks/${seq}`,
    events: ['notification.acked'],
    description: '',
    enabled: true,
    disabledReason: null,
    disabledAt: null,
    failingSince: null,
    createdAt: '2026-12-08T09:00:00.000Z',
    updatedAt: '2026-12-08T09:00:00.000Z',
    publisherId: 'orders',
    pendingMessages: 0,
    lastAttempt: null,
    attemptsLastHour: 0,
    failuresLastHour: 0,
    ...over,
  };
}
