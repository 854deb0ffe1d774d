import { HttpClient, HttpParams } from '@angular/common/http';
import { inject, Injectable } from '@angular/core';
import type { AdminInboxResponse } from '@herald/protocol';
import { firstValueFrom } from 'rxjs';

/** What the inbox view asks for: the filters of `GET /v1/me/notifications`, and the page to read. */
export interface InboxFilter {
  unread?: boolean;
  archived?: boolean;
  event?: string;
  cursor?: string;
}

@Injectable({ providedIn: 'root' })
export class InboxApi {
  private readonly http = inject(HttpClient);

  /** One page of a user's inbox, newest first (`GET /admin/api/users/:userId/inbox`). */
  get(userId: string, filter: InboxFilter, limit: number): Promise<AdminInboxResponse> {
    let params = new HttpParams().set('limit', limit);
    if (filter.unread) params = params.set('unread', 'true');
    if (filter.archived) params = params.set('archived', 'true');
    if (filter.event) params = params.set('event', filter.event);
    if (filter.cursor) params = params.set('cursor', filter.cursor);
    return firstValueFrom(
      this.http.get<AdminInboxResponse>(`/admin/api/users/${encodeURIComponent(userId)}/inbox`, { params }),
    );
  }
}
