import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import { P2pService } from '../p2p/p2p.service.js';
import { QueueService } from '../queue/queue.service.js';
import { StorageService } from '../storage/storage.service.js';

/** A dependency that does not answer within this is reported down. */
const CHECK_TIMEOUT_MS = 2_000;

/** GET /health: 200 when the database, the queue and the libp2p node answer; 503 (naming which did not) otherwise. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly storage: StorageService,
    private readonly queue: QueueService,
    private readonly p2p: P2pService,
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
      () =>
        this.indicators
          .check('p2p')
          .attempt(() => {
            if (!this.p2p.isRunning()) throw new Error('the libp2p node is not running');
            return { peer_id: this.p2p.peerId, peers: this.p2p.peers().length };
          })
          .withTimeout(CHECK_TIMEOUT_MS),
    ]);
  }
}
