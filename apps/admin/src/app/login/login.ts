import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { toSignal } from '@angular/core/rxjs-interop';
import { NonNullableFormBuilder, ReactiveFormsModule } from '@angular/forms';
import { Router } from '@angular/router';
import { describeError } from '../core/api-error';
import { AuthService } from '../core/auth.service';

@Component({
  selector: 'hd-login',
  imports: [ReactiveFormsModule],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <form class="card narrow" [formGroup]="form" (ngSubmit)="submit()" aria-labelledby="login-title">
      <h1 id="login-title">Herald console</h1>
      <label for="password">Admin password</label>
      <input
        id="password"
        name="password"
        type="password"
        autocomplete="current-password"
        required
        formControlName="password"
      />
      @if (error()) {
        <p class="error" role="alert" data-testid="login-error">{{ error() }}</p>
      }
      <button type="submit" [disabled]="busy() || !password()">{{ busy() ? 'Logging in…' : 'Log in' }}</button>
    </form>
  `,
})
export class Login {
  private readonly auth = inject(AuthService);
  private readonly router = inject(Router);
  protected readonly form = inject(NonNullableFormBuilder).group({ password: '' });
  protected readonly password = toSignal(this.form.controls.password.valueChanges, {
    initialValue: this.form.controls.password.value,
  });
  protected readonly busy = signal(false);
  protected readonly error = signal<string | null>(null);

  async submit(): Promise<void> {
    const { password } = this.form.getRawValue();
    this.busy.set(true);
    this.error.set(null);
    // A reactive control is disabled through its model, not a [disabled] binding.
    this.form.disable();
    try {
      await this.auth.login(password);
      await this.router.navigate(['/overview']);
    } catch (error) {
      this.error.set(describeError(error));
    } finally {
      this.busy.set(false);
      this.form.enable();
    }
  }
}
