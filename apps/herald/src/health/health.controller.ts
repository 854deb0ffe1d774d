import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import type { Response } from 'express';
import { HealthService, ReadyReport } from './health.service';

@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  /** The process is up. */
  @Get('live')
  @HttpCode(200)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** PostgreSQL and Redis answer: 200, else 503 naming which does not. */
  @Get('ready')
  async ready(@Res({ passthrough: true }) response: Response): Promise<ReadyReport> {
    const report = await this.health.ready();
    response.status(report.status === 'ok' ? 200 : 503);
    return report;
  }
}
