import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { AckService } from '../acks/ack.service';
import { AckWriter } from '../acks/ack-writer';
import { AuthModule } from '../auth/auth.module';
import { MetricsService } from '../metrics/metrics.service';
import { DeliveryRepository } from '../record/delivery.repository';
import { NotificationsModule } from '../record/notifications.module';
import { StreamRepository } from '../record/stream.repository';
import { Bus } from '../routing/bus';
import { BusCatchUp } from '../routing/bus-catch-up';
import { ConnectionCommands } from '../connections/connection-commands';
import { ConnectionPresence } from '../connections/connection-presence';
import { ConnectionRegistry } from '../connections/connection-registry';
import { ConnectionService } from '../connections/connection.service';
import { DeliveryService } from './delivery.service';
import { LiveEvents } from './live-events';
import { Replay } from './replay';
import { HandshakeAdmission } from '../connections/handshake-admission';
import { InboxService } from '../inbox/inbox.service';
import { PresenceRepository } from '../routing/presence.repository';
import { QueueMetrics } from '../redelivery/queue-metrics';
import { SWEEP_QUEUE } from '../redelivery/queues';
import { RedeliveryScheduler } from '../redelivery/redelivery.scheduler';
import { RedeliveryService } from '../redelivery/redelivery.service';
import { NotificationRouter } from '../routing/notification-router';
import { RedisBus } from '../routing/redis-bus';
import { SweepProcessor } from '../redelivery/sweep.processor';
import { WebhookEvents } from '../webhooks/webhook-events';
import { WebhookInterest } from '../webhooks/webhook-interest';
import { WebhookTargets } from '../webhooks/webhook-targets';

@Module({
  imports: [AuthModule, NotificationsModule, BullModule.registerQueue({ name: SWEEP_QUEUE })],
  providers: [
    {
      provide: AckWriter,
      inject: [DeliveryRepository, StreamRepository, MetricsService],
      useFactory: (deliveries: DeliveryRepository, streams: StreamRepository, metrics: MetricsService) =>
        new AckWriter(deliveries, streams, metrics),
    },
    AckService,
    { provide: Bus, useClass: RedisBus },
    BusCatchUp,
    ConnectionCommands,
    ConnectionPresence,
    ConnectionRegistry,
    ConnectionService,
    DeliveryService,
    HandshakeAdmission,
    InboxService,
    LiveEvents,
    NotificationRouter,
    PresenceRepository,
    QueueMetrics,
    RedeliveryScheduler,
    RedeliveryService,
    Replay,
    SweepProcessor,
    WebhookEvents,
    WebhookInterest,
    WebhookTargets,
  ],
  exports: [
    AckService,
    ConnectionCommands,
    ConnectionService,
    DeliveryService,
    ConnectionRegistry,
    HandshakeAdmission,
    InboxService,
    LiveEvents,
    NotificationRouter,
    PresenceRepository,
    Bus,
    WebhookEvents,
    WebhookInterest,
    WebhookTargets,
  ],
})
export class DeliveryModule {}
