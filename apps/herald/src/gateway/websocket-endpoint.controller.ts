import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorCode } from '@herald/protocol';
import { UpgradeRequiredError } from '../common/errors';
import { ApiErrors, ApiUserErrors, errorExample, schemaRef } from '../openapi/decorators';

/**
 * `GET /ws` as a plain HTTP request: 426 Upgrade Required (RFC 6455 §4.2.2). A WebSocket handshake never
 * reaches this route: Node hands it to the gateway (HeraldGateway, through HeraldWsAdapter).
 */
@Controller('ws')
@ApiTags('end users')
@ApiBearerAuth('userToken')
export class WebSocketEndpointController {
  @Get()
  @ApiOperation({
    summary: 'The WebSocket endpoint (docs/protocol.md)',
    description:
      'Opens with a WebSocket handshake (`Connection: Upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13`): ' +
      '101, then the protocol of docs/protocol.md. Refusals come before the upgrade, with the error body: 401 and 403 ' +
      'as for the other end-user endpoints, 503 while the replica drains or holds HERALD_MAX_CONNECTIONS. A plain ' +
      'request gets 426.',
  })
  @ApiQuery({
    name: 'token',
    required: false,
    schema: { type: 'string' },
    description: 'The user token, for browsers (they cannot set headers on a WebSocket).',
  })
  @ApiResponse({ status: 101, description: 'Switching Protocols: the WebSocket is open.' })
  @ApiUserErrors()
  @ApiErrors(426)
  @ApiResponse({
    status: 503,
    description: 'The replica is draining or at HERALD_MAX_CONNECTIONS; `Retry-After: 1` (Nginx tries another).',
    schema: schemaRef('ApiErrorBody'),
    example: errorExample(ErrorCode.Unavailable, 'server shutting down, reconnect'),
  })
  upgradeRequired(): never {
    throw new UpgradeRequiredError();
  }
}
