import { HttpClient } from '@angular/common/http';
import { computed, inject, Injectable, signal } from '@angular/core';
import { Router } from '@angular/router';
import type { AdminSession } from '@herald/protocol';
import { firstValueFrom } from 'rxjs';

const STORAGE_KEY = 'herald.admin.session';

/** The admin session: kept for the tab's life (sessionStorage), dropped when it expires or the API refuses it. */
@Injectable({ providedIn: 'root' })
export class AuthService {
  private readonly http = inject(HttpClient);
  private readonly router = inject(Router);
  private readonly session = signal<AdminSession | null>(readStored());

  readonly token = computed(() => {
    const session = this.session();
    return session && Date.parse(session.expiresAt) > Date.now() ? session.token : null;
  });
  readonly loggedIn = computed(() => this.token() !== null);
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    this.armExpiry();
  }

  /** `token` reads the clock only when the session changes: at expiry, log out for real. */
  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    const session = this.session();
    if (!session) return;
    const left = Date.parse(session.expiresAt) - Date.now();
    if (left <= 0) return;
    this.expiryTimer = setTimeout(() => this.logout(), Math.min(left, 2_147_483_647));
  }

  async login(password: string): Promise<void> {
    const session = await firstValueFrom(this.http.post<AdminSession>('/admin/api/login', { password }));
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    this.session.set(session);
    this.armExpiry();
  }

  logout(): void {
    clearTimeout(this.expiryTimer);
    sessionStorage.removeItem(STORAGE_KEY);
    this.session.set(null);
    void this.router.navigate(['/login']);
  }
}

function readStored(): AdminSession | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as AdminSession) : null;
  } catch {
    return null;
  }
}
