import { HttpClient, provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { provideRouter, Router } from '@angular/router';
import { firstValueFrom } from 'rxjs';
import { authInterceptor } from './auth.interceptor';
import { AuthService } from './auth.service';

describe('authInterceptor', () => {
  beforeEach(() => {
    sessionStorage.setItem(
      'herald.admin.session',
      JSON.stringify({ token: 'session-1', expiresAt: new Date(Date.now() + 60_000).toISOString() }),
    );
    TestBed.configureTestingModule({
      providers: [
        provideZonelessChangeDetection(),
        provideHttpClient(withInterceptors([authInterceptor])),
        provideHttpClientTesting(),
        provideRouter([]),
      ],
    });
  });

  it('sends the session as a Bearer token, and logs out on a 401', async () => {
    vi.spyOn(TestBed.inject(Router), 'navigate').mockResolvedValue(true);
    const http = TestBed.inject(HttpClient);
    const backend = TestBed.inject(HttpTestingController);
    const answer = firstValueFrom(http.get('/admin/api/stats'));
    const call = backend.expectOne('/admin/api/stats');
    expect(call.request.headers.get('Authorization')).toBe('Bearer session-1');
    call.flush(
      { error: { code: 'UNAUTHORIZED', message: 'expired', requestId: 'r' } },
      { status: 401, statusText: 'Unauthorized' },
    );
    await expect(answer).rejects.toBeTruthy();
    expect(TestBed.inject(AuthService).loggedIn()).toBe(false);
    expect(sessionStorage.getItem('herald.admin.session')).toBeNull();
  });
});
