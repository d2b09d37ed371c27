import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { QueueBackend } from '@polyhome/queue';

/**
 * The job queue of this process (BullMQ or in-process). It drains in the destroy phase, before the database
 * closes, so a running job can still write what it did.
 */
@Injectable()
export class QueueService implements OnModuleDestroy {
  constructor(readonly backend: QueueBackend) {}

  /** bullmq or in-process. */
  get kind(): string {
    return this.backend.kind;
  }

  /** Resolves when the queue can take jobs (for BullMQ: Redis answers). */
  async ping(): Promise<void> {
    const health = await this.backend.health();
    if (!health.ok) throw new Error(health.error ?? `${health.backend} queue is not healthy`);
  }

  async onModuleDestroy(): Promise<void> {
    await this.backend.close();
  }
}
