import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DeliveryModule } from '../delivery/delivery.module';
import { NotificationsModule } from '../record/notifications.module';
import { RetentionRepository } from '../record/retention.repository';
import { RetentionService } from './retention.service';

/** Retention and the record's partitions (ADR 0020). */
@Module({
  imports: [DeliveryModule, NotificationsModule],
  providers: [
    { provide: RetentionRepository, inject: [DataSource], useFactory: (ds: DataSource) => new RetentionRepository(ds) },
    RetentionService,
  ],
  exports: [RetentionRepository],
})
export class RetentionModule {}
