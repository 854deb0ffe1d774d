import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AdminRepository } from './admin.repository';
import { DeliveryRepository } from './delivery.repository';
import { NotificationRepository } from './notification.repository';
import { UserRepository } from './user.repository';

/** The repositories are framework-free (tested directly against PostgreSQL); Nest builds them here. */
@Module({
  providers: [
    {
      provide: NotificationRepository,
      inject: [DataSource],
      useFactory: (ds: DataSource) => new NotificationRepository(ds),
    },
    { provide: DeliveryRepository, inject: [DataSource], useFactory: (ds: DataSource) => new DeliveryRepository(ds) },
    { provide: UserRepository, inject: [DataSource], useFactory: (ds: DataSource) => new UserRepository(ds) },
    { provide: AdminRepository, inject: [DataSource], useFactory: (ds: DataSource) => new AdminRepository(ds) },
  ],
  exports: [NotificationRepository, DeliveryRepository, UserRepository, AdminRepository],
})
export class NotificationsModule {}
