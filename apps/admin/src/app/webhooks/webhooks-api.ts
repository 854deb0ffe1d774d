import { HttpClient } from '@angular/common/http';
import { inject, Injectable } from '@angular/core';
import type { AdminWebhookAttemptsResponse, AdminWebhooksResponse } from '@herald/protocol';
import { firstValueFrom } from 'rxjs';

@Injectable({ providedIn: 'root' })
export class WebhooksApi {
  private readonly http = inject(HttpClient);

  /** Every publisher's endpoints, with their state and last hour (`GET /admin/api/webhooks`). */
  list(): Promise<AdminWebhooksResponse> {
    return firstValueFrom(this.http.get<AdminWebhooksResponse>('/admin/api/webhooks'));
  }

  /** One endpoint and its latest `limit` attempts, latest first (`GET /admin/api/webhooks/:id/attempts`). */
  attempts(id: string, limit: number): Promise<AdminWebhookAttemptsResponse> {
    return firstValueFrom(
      this.http.get<AdminWebhookAttemptsResponse>(`/admin/api/webhooks/${encodeURIComponent(id)}/attempts`, {
        params: { limit },
      }),
    );
  }
}
