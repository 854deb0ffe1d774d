import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { DeliveryModule } from '../delivery/delivery.module';
import { InboxController } from './inbox.controller';

/** The inbox's end-user REST; InboxService lives in DeliveryModule, beside the frames it answers. */
@Module({ imports: [AuthModule, DeliveryModule], controllers: [InboxController] })
export class InboxModule {}
