import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { NotificationsModule } from '../notifications/notifications.module';
import { Bus } from './bus';
import { ConnectionRegistry } from './connection-registry';
import { ConnectionService } from './connection.service';
import { DeliveryService } from './delivery.service';
import { LiveEvents } from './live-events';
import { PresenceRepository } from './presence.repository';
import { QueueMetrics } from './queue-metrics';
import { SWEEP_QUEUE } from './queues';
import { RedeliveryScheduler } from './redelivery.scheduler';
import { RedeliveryService } from './redelivery.service';
import { RedisBus } from './redis-bus';
import { SweepProcessor } from './sweep.processor';

@Module({
  imports: [AuthModule, NotificationsModule, BullModule.registerQueue({ name: SWEEP_QUEUE })],
  providers: [
    { provide: Bus, useClass: RedisBus },
    ConnectionRegistry,
    ConnectionService,
    DeliveryService,
    LiveEvents,
    PresenceRepository,
    QueueMetrics,
    RedeliveryScheduler,
    RedeliveryService,
    SweepProcessor,
  ],
  exports: [ConnectionService, DeliveryService, ConnectionRegistry, LiveEvents, PresenceRepository, Bus],
})
export class DeliveryModule {}
