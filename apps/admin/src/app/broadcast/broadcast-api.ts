import { HttpClient } from '@angular/common/http';
import { inject, Injectable } from '@angular/core';
import type { AdminBroadcastPreview, PublishRequest, PublishResponse } from '@herald/protocol';
import { firstValueFrom } from 'rxjs';

@Injectable({ providedIn: 'root' })
export class BroadcastApi {
  private readonly http = inject(HttpClient);

  preview(request: PublishRequest): Promise<AdminBroadcastPreview> {
    return firstValueFrom(this.http.post<AdminBroadcastPreview>('/admin/api/broadcasts/preview', request));
  }

  send(request: PublishRequest, idempotencyKey: string): Promise<PublishResponse> {
    return firstValueFrom(
      this.http.post<PublishResponse>('/admin/api/broadcasts', request, {
        headers: { 'Idempotency-Key': idempotencyKey },
      }),
    );
  }
}
