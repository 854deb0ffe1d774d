import { messageOf } from './http.js';
import type { ClientEvents, TokenSource } from './types.js';

/** Expiry (epoch ms) of a JWT, read without verifying it; undefined when the token is not a readable JWT. */
export function tokenExpiresAtMs(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeBase64(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    const claims = JSON.parse(json) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function decodeBase64(base64: string): string {
  const binary = atob(base64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** setTimeout's largest delay; longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

export interface TokenKeeperOptions {
  token: string | undefined;
  getToken: TokenSource | undefined;
  /** Refresh this long before expiry. */
  refreshBeforeMs: number;
  /** Sends `auth` with the fresh token; resolves when the server takes it, null when not connected. */
  sendAuth(token: string): Promise<void> | null;
  error(event: ClientEvents['error']): void;
}

/**
 * The client's token: fetched when missing, refused or about to expire before a connect, and refreshed
 * in-band (an `auth` frame, no reconnect) ahead of its expiry.
 */
export class TokenKeeper {
  /** The token to connect (and post acks) with. */
  token: string | undefined;
  /** The server refused the token: the next connect fetches a fresh one. */
  needFresh = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: TokenKeeperOptions) {
    this.token = options.token;
  }

  /** The token to connect with, fetching a fresh one when it is missing, refused or about to expire. */
  async current(): Promise<string> {
    const expiresAt = this.token === undefined ? undefined : tokenExpiresAtMs(this.token);
    const stale = expiresAt !== undefined && expiresAt - Date.now() < Math.min(this.options.refreshBeforeMs, 5000);
    if (this.options.getToken && (this.token === undefined || this.needFresh || stale)) {
      this.token = await this.options.getToken();
      this.needFresh = false;
    }
    return this.token!;
  }

  /** Before the token expires, a fresh one goes in-band, while `live()` says the connection is still this one. */
  scheduleRefresh(live: () => boolean): void {
    clearTimeout(this.refreshTimer);
    const expiresAt = this.token === undefined ? undefined : tokenExpiresAtMs(this.token);
    if (!this.options.getToken || expiresAt === undefined) return;
    const lifetime = expiresAt - Date.now();
    // Ahead of expiry by refreshBeforeMs, but no sooner than half-way for short tokens (no refresh loop).
    const due = Math.max(1000, lifetime - this.options.refreshBeforeMs, lifetime / 2);
    if (due > MAX_TIMER_MS) {
      // Too far for one timer: look again later.
      this.refreshTimer = setTimeout(() => this.scheduleRefresh(live), MAX_TIMER_MS);
      return;
    }
    this.refreshTimer = setTimeout(() => void this.refresh(live), due);
  }

  /** The connection ended: no refresh until the next one opens. */
  cancel(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private async refresh(live: () => boolean): Promise<void> {
    try {
      const token = await this.options.getToken!();
      if (!live()) return;
      const accepted = this.options.sendAuth(token);
      if (!accepted) {
        // Not connected now: the fresh token serves the next connect.
        this.token = token;
        return;
      }
      await accepted;
      this.token = token;
      this.scheduleRefresh(live);
    } catch (error) {
      // The server closes with 1008 at expiry; the reconnect then fetches a fresh token.
      this.options.error({ message: `token refresh failed: ${messageOf(error)}`, cause: error });
    }
  }
}
