import type { InboxAction, InboxPage, InboxStateResponse, ReadAllResponse, UnreadCount } from '@herald/protocol';
import { errorOf, messageOf } from './http.js';
import { InboxError } from './inbox-state.js';
import type { InboxListQuery } from './types.js';

export interface InboxRestOptions {
  fetch: typeof fetch | undefined;
  /** `http(s)://host/base/v1/me`. */
  meUrl: string;
  /** The user token (fetched when missing or refused, as for a connect). */
  token(): Promise<string>;
  /** The server refused the token (401): the next `token()` fetches a fresh one. */
  tokenRefused(): void;
  /** A refused token is worth one more try (the client has `getToken`). */
  canRefreshToken: boolean;
}

/** The end-user REST of the inbox (`/v1/me/…`, protocol.md), with the user token; failures are `InboxError`s. */
export class InboxRest {
  constructor(private readonly options: InboxRestOptions) {}

  /** `GET /v1/me/notifications`: one page, newest first. */
  list(query: InboxListQuery = {}): Promise<InboxPage> {
    const params = new URLSearchParams();
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined && query.cursor !== null) params.set('cursor', query.cursor);
    if (query.unread !== undefined) params.set('unread', String(query.unread));
    if (query.archived !== undefined) params.set('archived', String(query.archived));
    if (query.event !== undefined) params.set('event', query.event);
    const search = params.toString();
    return this.request<InboxPage>('GET', `notifications${search ? `?${search}` : ''}`);
  }

  /** `GET /v1/me/unread-count`. */
  unreadCount(): Promise<UnreadCount> {
    return this.request<UnreadCount>('GET', 'unread-count');
  }

  /** `POST /v1/me/<action>` with at most 100 ids: a result per id, and the count after. */
  apply(action: InboxAction, ids: string[]): Promise<InboxStateResponse> {
    return this.request<InboxStateResponse>('POST', action, { ids });
  }

  /** `POST /v1/me/read-all`: everything up to now (of `topic` only, when given) read. */
  readAll(topic?: string): Promise<ReadAllResponse> {
    return this.request<ReadAllResponse>('POST', 'read-all', topic === undefined ? {} : { topic });
  }

  /** One request; a refused token is fetched afresh and tried once more when the client can refresh it. */
  private async request<T>(method: 'GET' | 'POST', path: string, body?: object): Promise<T> {
    const { fetch: fetchImpl, meUrl } = this.options;
    const what = `${method} /v1/me/${path.replace(/\?.*$/, '')}`;
    if (!fetchImpl) throw new InboxError('NO_FETCH', `no fetch for ${what}: pass options.fetch`);
    for (let attempt = 1; ; attempt++) {
      const token = await this.options.token();
      const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      let response: Response;
      try {
        response = await fetchImpl(`${meUrl}/${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch (cause) {
        throw new InboxError('NETWORK', `${what} failed: ${messageOf(cause)}`, { cause });
      }
      if (response.ok) return (await response.json()) as T;
      if (response.status === 401) {
        this.options.tokenRefused();
        if (attempt === 1 && this.options.canRefreshToken) continue;
      }
      const { code, message } = await errorOf(response);
      throw new InboxError(code ?? `HTTP_${response.status}`, `${what} answered ${response.status}: ${message}`, {
        status: response.status,
      });
    }
  }
}
