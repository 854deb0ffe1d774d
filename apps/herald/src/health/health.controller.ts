import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { schemaRef } from '../openapi/decorators';
import { HealthService, ReadyReport } from './health.service';

@Controller('health')
@ApiTags('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  /** The process is up. */
  @Get('live')
  @HttpCode(200)
  @ApiOperation({ summary: 'The process is up' })
  @ApiResponse({ status: 200, schema: schemaRef('HealthLive') })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** PostgreSQL and Redis answer and the replica is not draining: 200, else 503 saying which. */
  @Get('ready')
  @ApiOperation({ summary: 'PostgreSQL and Redis answer, and the replica is not draining' })
  @ApiResponse({ status: 200, schema: schemaRef('HealthReady'), description: 'Ready' })
  @ApiResponse({
    status: 503,
    schema: schemaRef('HealthReady'),
    description: 'A store is down, or the replica is draining',
  })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<ReadyReport> {
    const report = await this.health.ready();
    reply.status(report.status === 'ok' ? 200 : 503);
    return report;
  }
}
