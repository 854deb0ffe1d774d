import { Module } from '@nestjs/common';
import { DeliveryRepository } from './delivery.repository';
import { NotificationRepository } from './notification.repository';
import { UserRepository } from './user.repository';

@Module({
  providers: [NotificationRepository, DeliveryRepository, UserRepository],
  exports: [NotificationRepository, DeliveryRepository, UserRepository],
})
export class NotificationsModule {}
