import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { DeliveryModule } from '../delivery/delivery.module';
import { NotificationsModule } from '../record/notifications.module';
import { PublishModule } from '../publish/publish.module';
import { AdminEventsService } from './admin-events.service';
import { AdminController, AdminLoginController } from './admin.controller';
import { AdminGuard } from './admin.guard';
import { AdminSessionService } from './admin-session.service';
import { AdminService } from './admin.service';
import { LoginAttemptsRepository } from './login-attempts.repository';
import { WebhooksModule } from '../webhooks/webhooks.module';

/** The admin API under /admin/api/ and its live event stream; off while HERALD_ADMIN_PASSWORD is empty. */
@Module({
  imports: [AuthModule, DeliveryModule, NotificationsModule, PublishModule, WebhooksModule],
  controllers: [AdminLoginController, AdminController],
  providers: [AdminEventsService, AdminGuard, AdminSessionService, AdminService, LoginAttemptsRepository],
})
export class AdminModule {}
