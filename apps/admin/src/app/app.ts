import { ChangeDetectionStrategy, Component, effect, inject, untracked } from '@angular/core';
import { RouterLink, RouterLinkActive, RouterOutlet } from '@angular/router';
import { AuthService } from './core/auth.service';
import { RealtimeService } from './core/realtime.service';

@Component({
  selector: 'hd-root',
  imports: [RouterOutlet, RouterLink, RouterLinkActive],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    @if (auth.loggedIn()) {
      <header class="bar">
        <strong class="brand">Herald</strong>
        <nav aria-label="Main">
          <a routerLink="/overview" routerLinkActive="active">Overview</a>
          <a routerLink="/connections" routerLinkActive="active">Connections</a>
          <a routerLink="/broadcast" routerLinkActive="active">Broadcast</a>
          <a routerLink="/notifications" routerLinkActive="active">Notifications</a>
          <a routerLink="/inbox" routerLinkActive="active">Inbox</a>
          <a routerLink="/webhooks" routerLinkActive="active">Webhooks</a>
        </nav>
        <span class="live" [attr.data-status]="realtime.status()" data-testid="live-status">{{
          realtime.status()
        }}</span>
        <button type="button" class="link" (click)="auth.logout()">Log out</button>
      </header>
    }
    <main><router-outlet /></main>
  `,
})
export class App {
  protected readonly auth = inject(AuthService);
  protected readonly realtime = inject(RealtimeService);

  constructor() {
    // One live stream for the whole console, while logged in.
    effect(() => {
      const loggedIn = this.auth.loggedIn();
      // Only the login state drives this; what start() reads must not re-run it.
      untracked(() => {
        if (loggedIn) void this.realtime.start();
        else this.realtime.stop();
      });
    });
  }
}
