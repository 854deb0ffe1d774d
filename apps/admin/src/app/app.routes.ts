import { Routes } from '@angular/router';
import { authGuard } from './core/auth.guard';

export const routes: Routes = [
  { path: 'login', title: 'Log in · Herald', loadComponent: () => import('./login/login').then((m) => m.Login) },
  {
    path: '',
    canActivate: [authGuard],
    children: [
      { path: '', pathMatch: 'full', redirectTo: 'overview' },
      {
        path: 'overview',
        title: 'Overview · Herald',
        loadComponent: () => import('./overview/overview').then((m) => m.Overview),
      },
      {
        path: 'connections',
        title: 'Connections · Herald',
        loadComponent: () => import('./connections/connections').then((m) => m.Connections),
      },
      {
        path: 'broadcast',
        title: 'Broadcast · Herald',
        loadComponent: () => import('./broadcast/broadcast').then((m) => m.Broadcast),
      },
      {
        path: 'notifications',
        title: 'Notifications · Herald',
        loadComponent: () => import('./notifications/notifications').then((m) => m.Notifications),
      },
      {
        path: 'notifications/:id',
        title: 'Notification · Herald',
        loadComponent: () => import('./notifications/notification-detail').then((m) => m.NotificationDetail),
      },
      {
        path: 'inbox',
        title: 'Inbox · Herald',
        loadComponent: () => import('./inbox/user-inbox').then((m) => m.UserInbox),
      },
      {
        // A user's inbox: the route's :userId and ?highlight= are the view's inputs.
        path: 'inbox/:userId',
        title: 'Inbox · Herald',
        loadComponent: () => import('./inbox/user-inbox').then((m) => m.UserInbox),
      },
      {
        path: 'webhooks',
        title: 'Webhooks · Herald',
        loadComponent: () => import('./webhooks/webhooks').then((m) => m.Webhooks),
      },
      {
        path: 'webhooks/:id',
        title: 'Webhook endpoint · Herald',
        loadComponent: () => import('./webhooks/webhook-detail').then((m) => m.WebhookDetail),
      },
    ],
  },
  { path: '**', redirectTo: '' },
];
