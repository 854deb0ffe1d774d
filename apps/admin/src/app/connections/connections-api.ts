import { HttpClient, HttpParams } from '@angular/common/http';
import { inject, Injectable } from '@angular/core';
import type { AdminConnectionsResponse } from '@herald/protocol';
import { firstValueFrom } from 'rxjs';

@Injectable({ providedIn: 'root' })
export class ConnectionsApi {
  private readonly http = inject(HttpClient);

  list(userId?: string): Promise<AdminConnectionsResponse> {
    const params = userId ? new HttpParams().set('userId', userId) : undefined;
    return firstValueFrom(this.http.get<AdminConnectionsResponse>('/admin/api/connections', params ? { params } : {}));
  }

  disconnect(connectionId: string): Promise<unknown> {
    return firstValueFrom(this.http.delete(`/admin/api/connections/${encodeURIComponent(connectionId)}`));
  }
}
