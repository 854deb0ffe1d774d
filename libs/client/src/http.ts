import type { TicketResponse } from '@herald/protocol';

/** The client's HTTP side: URLs beside the WebSocket's, error bodies, and minting connection tickets. */

/** `ws(s)://host/base/ws` → `http(s)://host/base` + path. */
export function httpUrlBeside(url: URL, path: string): string {
  const http = new URL(url);
  http.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  http.pathname = url.pathname.replace(/\/ws\/?$/, '').replace(/\/+$/, '') + path;
  http.search = '';
  http.hash = '';
  return http.toString();
}

/** The client's `url` option, checked: an absolute ws:// or wss:// URL. */
export function webSocketUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`url must be an absolute ws:// or wss:// URL, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new TypeError(`url must start with ws:// or wss://, got ${JSON.stringify(text)}`);
  }
  return url;
}

/** `url` asking for `features` too (`?features=a,b`, after any the URL names already). */
export function withFeatures(url: URL, features: readonly string[]): URL {
  if (features.length === 0) return url;
  const withThem = new URL(url);
  const named = withThem.searchParams.get('features')?.split(',').filter(Boolean) ?? [];
  withThem.searchParams.set('features', [...new Set([...named, ...features])].join(','));
  return withThem;
}

export function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export async function errorMessageOf(response: Response): Promise<string> {
  return (await errorOf(response)).message;
}

/** The error body's code (a Herald answer) and message, or the start of whatever else came. */
export async function errorOf(response: Response): Promise<{ code?: string; message: string }> {
  const text = await response.text().catch(() => '');
  const body = parseJson<{ error?: { code?: string; message?: string } }>(text);
  return {
    ...(body?.error?.code !== undefined ? { code: body.error.code } : {}),
    message: body?.error?.message ?? (text.slice(0, 200) || response.statusText),
  };
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * What minting a ticket gave: the ticket, or the status, Herald error code (absent when the answer was not
 * Herald's, a proxy's say) and message of a refusal (status 0: no answer).
 */
export type MintedTicket = { ok: true; ticket: string } | { ok: false; status: number; code?: string; message: string };

/** `POST ticketsUrl` with the user token in `Authorization`: a one-time ticket for `/ws?ticket=` (protocol.md, section 1). */
export async function mintTicket(fetchImpl: typeof fetch, ticketsUrl: string, token: string): Promise<MintedTicket> {
  let response: Response;
  try {
    response = await fetchImpl(ticketsUrl, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) return { ok: false, status: response.status, ...(await errorOf(response)) };
    const { ticket } = (await response.json()) as TicketResponse;
    return { ok: true, ticket };
  } catch (error) {
    return { ok: false, status: 0, message: messageOf(error) };
  }
}
