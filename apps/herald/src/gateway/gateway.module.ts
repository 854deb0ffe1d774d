import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { DeliveryModule } from '../delivery/delivery.module';
import { HeraldGateway } from './herald.gateway';
import { StreamController } from './stream.controller';
import { TicketsController } from './tickets.controller';
import { StreamService } from './stream.service';
import { WebSocketEndpointController } from './websocket-endpoint.controller';

@Module({
  imports: [AuthModule, DeliveryModule],
  controllers: [StreamController, TicketsController, WebSocketEndpointController],
  providers: [HeraldGateway, StreamService],
})
export class GatewayModule {}
