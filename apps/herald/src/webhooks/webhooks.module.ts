import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { DeliveryModule } from '../delivery/delivery.module';
import { NotificationsModule } from '../record/notifications.module';
import { WEBHOOK_BATCH_QUEUE, WEBHOOK_DELIVERY_QUEUE } from './queues';
import { WebhookBatchesProcessor } from './webhook-batches.processor';
import { WebhookDeliveriesProcessor } from './webhook-deliveries.processor';
import { WebhookEndpointsService } from './webhook-endpoints.service';
import { WebhooksController } from './webhooks.controller';

/**
 * Delivery webhooks (ADR 0027): the publisher's `/v1/webhooks`, the batcher and the sender. What the
 * delivery path reports (WebhookEvents) and who wants it (WebhookInterest) live in DeliveryModule, beside
 * the acks, checks and reads that report.
 */
@Module({
  imports: [
    AuthModule,
    DeliveryModule,
    NotificationsModule,
    BullModule.registerQueue({ name: WEBHOOK_BATCH_QUEUE }, { name: WEBHOOK_DELIVERY_QUEUE }),
  ],
  controllers: [WebhooksController],
  providers: [WebhookBatchesProcessor, WebhookDeliveriesProcessor, WebhookEndpointsService],
  exports: [WebhookEndpointsService],
})
export class WebhooksModule {}
