import { provideHttpClient } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import { provideRouter } from '@angular/router';
import { Broadcast } from './broadcast';

describe('Broadcast', () => {
  let fixture: ComponentFixture<Broadcast>;
  let root: HTMLElement;

  beforeEach(async () => {
    TestBed.configureTestingModule({
      imports: [Broadcast],
      providers: [provideZonelessChangeDetection(), provideHttpClient(), provideHttpClientTesting(), provideRouter([])],
    });
    fixture = TestBed.createComponent(Broadcast);
    root = fixture.nativeElement as HTMLElement;
    await fixture.whenStable();
  });

  async function type(selector: string, value: string): Promise<void> {
    const field = root.querySelector<HTMLInputElement | HTMLTextAreaElement>(selector)!;
    field.value = value;
    field.dispatchEvent(new Event('input'));
    await fixture.whenStable();
  }

  async function choose(audience: string): Promise<void> {
    root.querySelector<HTMLInputElement>(`input[name="audience"][value="${audience}"]`)!.click();
    await fixture.whenStable();
  }

  async function review(): Promise<void> {
    root.querySelector<HTMLButtonElement>('button[type="submit"]')!.click();
    await fixture.whenStable();
  }

  it('shows the field of the audience chosen, and keeps what was typed in the other', async () => {
    expect(root.querySelector('#topic')).toBeNull();
    await choose('topic');
    await type('#topic', 'news');
    await choose('users');
    expect(root.querySelector('#topic')).toBeNull();
    expect(root.querySelector('#users')).not.toBeNull();
    await choose('topic');
    expect(root.querySelector<HTMLInputElement>('#topic')?.value).toBe('news');
  });

  it('asks for a preview of the request built from the form', async () => {
    await choose('users');
    await type('#users', 'alice, bob');
    await type('#event', 'maintenance');
    await type('#ttl', '60');
    await review();
    const call = TestBed.inject(HttpTestingController).expectOne('/admin/api/broadcasts/preview');
    expect(call.request.body).toEqual({ to: { users: ['alice', 'bob'] }, event: 'maintenance', ttlSeconds: 60 });
    call.flush({ recipients: 2 });
    // The answer settles review() a few microtasks later: wait for the dialog, with vi.waitFor's deadline.
    await vi.waitFor(async () => {
      await fixture.whenStable();
      expect(root.querySelector('[data-testid="confirm-recipients"]')?.textContent).toContain('2 users');
    });
  });

  it('shows the field errors and asks nothing of the server when the draft is wrong', async () => {
    await type('#payload', '{"text": ');
    await review();
    TestBed.inject(HttpTestingController).expectNone('/admin/api/broadcasts/preview');
    expect(root.querySelector('[data-testid="payload-error"]')?.textContent).toMatch(/^Not valid JSON/);
    expect(root.querySelector('#event')?.getAttribute('aria-invalid')).toBe('true');
  });
});
