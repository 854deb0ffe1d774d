import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ACK_DATA_SOURCE } from '../database/database.module';
import { AdminRepository } from './admin.repository';
import { DeliveryRepository } from './delivery.repository';
import { InboxRepository } from './inbox.repository';
import { NotificationRepository } from './notification.repository';
import { RedeliveryRepository } from './redelivery.repository';
import { ReplayRepository } from './replay.repository';
import { StreamRepository } from './stream.repository';
import { UserRepository } from './user.repository';
import { WebhookEndpointRepository } from './webhook-endpoint.repository';
import { WebhookRepository } from './webhook.repository';

/** The repositories are framework-free (tested directly against PostgreSQL); Nest builds them here. */
@Module({
  providers: [
    {
      provide: NotificationRepository,
      inject: [DataSource],
      useFactory: (ds: DataSource) => new NotificationRepository(ds),
    },
    {
      provide: StreamRepository,
      inject: [DataSource, ACK_DATA_SOURCE],
      useFactory: (ds: DataSource, acks: DataSource) => new StreamRepository(ds, acks),
    },
    {
      provide: DeliveryRepository,
      inject: [ACK_DATA_SOURCE],
      useFactory: (acks: DataSource) => new DeliveryRepository(acks),
    },
    { provide: ReplayRepository, inject: [DataSource], useFactory: (ds: DataSource) => new ReplayRepository(ds) },
    {
      provide: RedeliveryRepository,
      inject: [DataSource],
      useFactory: (ds: DataSource) => new RedeliveryRepository(ds),
    },
    { provide: UserRepository, inject: [DataSource], useFactory: (ds: DataSource) => new UserRepository(ds) },
    { provide: AdminRepository, inject: [DataSource], useFactory: (ds: DataSource) => new AdminRepository(ds) },
    { provide: InboxRepository, inject: [DataSource], useFactory: (ds: DataSource) => new InboxRepository(ds) },
    {
      provide: WebhookRepository,
      inject: [DataSource],
      useFactory: (ds: DataSource) => new WebhookRepository(ds),
    },
    {
      provide: WebhookEndpointRepository,
      inject: [DataSource],
      useFactory: (ds: DataSource) => new WebhookEndpointRepository(ds),
    },
  ],
  exports: [
    NotificationRepository,
    DeliveryRepository,
    ReplayRepository,
    RedeliveryRepository,
    StreamRepository,
    UserRepository,
    AdminRepository,
    InboxRepository,
    WebhookRepository,
    WebhookEndpointRepository,
  ],
})
export class NotificationsModule {}
