import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import { QueueService } from '../queue/queue.service.js';
import { StorageService } from '../storage/storage.service.js';

/** A dependency that does not answer within this is reported down. */
const CHECK_TIMEOUT_MS = 2_000;

/** GET /health: 200 when the database and the queue answer, 503 (with which one failed) when not. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly storage: StorageService,
    private readonly queue: QueueService,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () =>
        this.indicators
          .check('database')
          .attempt(async () => {
            await this.storage.ping();
            return { backend: this.storage.backend };
          })
          .withTimeout(CHECK_TIMEOUT_MS),
      () =>
        this.indicators
          .check('queue')
          .attempt(async () => {
            await this.queue.ping();
            return { backend: this.queue.kind };
          })
          .withTimeout(CHECK_TIMEOUT_MS),
    ]);
  }
}
