import { HttpClient, HttpParams } from '@angular/common/http';
import { inject, Injectable } from '@angular/core';
import type { AdminNotificationsResponse, NotificationView } from '@herald/protocol';
import { firstValueFrom } from 'rxjs';

export interface HistoryFilter {
  event?: string;
  userId?: string;
  status?: string;
  from?: string;
  to?: string;
  before?: string;
}

@Injectable({ providedIn: 'root' })
export class NotificationsApi {
  private readonly http = inject(HttpClient);

  list(filter: HistoryFilter, limit = 25): Promise<AdminNotificationsResponse> {
    let params = new HttpParams().set('limit', limit);
    for (const [key, value] of Object.entries(filter)) {
      if (typeof value === 'string' && value.trim() !== '') params = params.set(key, value.trim());
    }
    return firstValueFrom(this.http.get<AdminNotificationsResponse>('/admin/api/notifications', { params }));
  }

  get(id: string): Promise<NotificationView> {
    return firstValueFrom(
      this.http.get<NotificationView>(`/admin/api/notifications/${encodeURIComponent(id)}`, {
        params: { limit: 1000 },
      }),
    );
  }
}
