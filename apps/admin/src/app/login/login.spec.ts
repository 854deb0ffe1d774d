import { provideHttpClient } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { provideRouter, Router } from '@angular/router';
import { AuthService } from '../core/auth.service';
import { Login } from './login';

describe('Login', () => {
  beforeEach(() => {
    sessionStorage.clear();
    TestBed.configureTestingModule({
      imports: [Login],
      providers: [provideZonelessChangeDetection(), provideHttpClient(), provideHttpClientTesting(), provideRouter([])],
    });
  });

  async function submit(
    password: string,
  ): Promise<{ http: HttpTestingController; done: Promise<void>; root: HTMLElement }> {
    const fixture = TestBed.createComponent(Login);
    await fixture.whenStable();
    const root = fixture.nativeElement as HTMLElement;
    const input = root.querySelector('input')!;
    input.value = password;
    input.dispatchEvent(new Event('input'));
    await fixture.whenStable();
    const login = fixture.componentInstance as unknown as { submit(): Promise<void> };
    const done: Promise<void> = login.submit().then(async () => {
      await fixture.whenStable();
    });
    return { http: TestBed.inject(HttpTestingController), done, root };
  }

  it('shows the service\u2019s message when the password is wrong, and stays logged out', async () => {
    const { http, done, root } = await submit('guess');
    const call = http.expectOne('/admin/api/login');
    expect(call.request.body).toEqual({ password: 'guess' });
    call.flush(
      { error: { code: 'UNAUTHORIZED', message: 'wrong password', requestId: 'r' } },
      { status: 401, statusText: 'Unauthorized' },
    );
    await done;
    expect(root.querySelector('[data-testid="login-error"]')?.textContent).toContain('wrong password');
    expect(TestBed.inject(AuthService).loggedIn()).toBe(false);
  });

  it('keeps the session and goes to the overview on the right password', async () => {
    const navigate = vi.spyOn(TestBed.inject(Router), 'navigate').mockResolvedValue(true);
    const { http, done } = await submit('right');
    http.expectOne('/admin/api/login').flush({ token: 't', expiresAt: new Date(Date.now() + 60_000).toISOString() });
    await done;
    expect(TestBed.inject(AuthService).token()).toBe('t');
    expect(navigate).toHaveBeenCalledWith(['/overview']);
  });
});
