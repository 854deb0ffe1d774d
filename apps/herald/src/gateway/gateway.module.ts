import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { DeliveryModule } from '../delivery/delivery.module';
import { HeraldGateway } from './herald.gateway';

@Module({
  imports: [AuthModule, DeliveryModule],
  providers: [HeraldGateway],
})
export class GatewayModule {}
