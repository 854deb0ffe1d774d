import { HttpErrorResponse } from '@angular/common/http';
import type { ApiErrorBody } from '@herald/protocol';

/** A readable sentence for any failed API call: the service's own message when it sent one. */
export function describeError(error: unknown): string {
  if (error instanceof HttpErrorResponse) {
    const body = error.error as Partial<ApiErrorBody> | null;
    if (body?.error?.message) {
      const details = body.error.details?.map((d) => `${d.field}: ${d.reason}`).join('; ');
      return details && !body.error.message.includes(details)
        ? `${body.error.message} (${details})`
        : body.error.message;
    }
    if (error.status === 0) return 'The service did not answer. Is it running?';
    return `The service answered ${error.status} ${error.statusText}`;
  }
  return error instanceof Error ? error.message : String(error);
}
