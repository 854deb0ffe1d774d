import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { Router } from '@angular/router';
import { describeError } from '../core/api-error';
import { AuthService } from '../core/auth.service';

@Component({
  selector: 'hd-login',
  imports: [FormsModule],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <form class="card narrow" (ngSubmit)="submit()" aria-labelledby="login-title">
      <h1 id="login-title">Herald console</h1>
      <label for="password">Admin password</label>
      <input
        id="password"
        name="password"
        type="password"
        autocomplete="current-password"
        required
        [(ngModel)]="password"
        [disabled]="busy()"
      />
      @if (error()) {
        <p class="error" role="alert" data-testid="login-error">{{ error() }}</p>
      }
      <button type="submit" [disabled]="busy() || !password">{{ busy() ? 'Logging in…' : 'Log in' }}</button>
    </form>
  `,
})
export class Login {
  private readonly auth = inject(AuthService);
  private readonly router = inject(Router);
  protected password = '';
  protected readonly busy = signal(false);
  protected readonly error = signal<string | null>(null);

  async submit(): Promise<void> {
    this.busy.set(true);
    this.error.set(null);
    try {
      await this.auth.login(this.password);
      await this.router.navigate(['/overview']);
    } catch (error) {
      this.error.set(describeError(error));
    } finally {
      this.busy.set(false);
    }
  }
}
