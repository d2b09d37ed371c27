import { Controller, Get, Header, UseGuards } from '@nestjs/common';
import { prometheusContentType } from 'prom-client';
import { MetricsAuthGuard } from './metrics-auth.guard.js';
import { MetricsService } from './metrics.service.js';

/** GET /metrics: Prometheus text format. Outside /admin so a scraper needs no admin token. */
@Controller('metrics')
@UseGuards(MetricsAuthGuard)
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  /** GET /metrics: every metric of this process, queue gauges read at this moment. */
  @Get()
  @Header('Content-Type', prometheusContentType)
  @Header('Cache-Control', 'no-store')
  scrape(): Promise<string> {
    return this.metrics.render();
  }
}
