import { Inject, Injectable } from '@nestjs/common';
import { ApiError } from '../common/api-error.js';
import { pageOf, type Page, type PageQueryDto } from '../common/pagination.js';
import { QueueRegistry } from '../queue/queue-registry.js';
import { QueueService } from '../queue/queue.service.js';
import type { QueueCountsDto } from './queues.dto.js';

/** The admin view of the job queues. */
@Injectable()
export class QueuesService {
  constructor(
    @Inject(QueueService) private readonly queue: QueueService,
    @Inject(QueueRegistry) private readonly registry: QueueRegistry,
  ) {}

  /** Counts of the registered queues, by name; only the requested page's queues are read from the backend. */
  async list(query: PageQueryDto): Promise<Page<QueueCountsDto>> {
    const page = pageOf(this.registry.names(), (name) => name, query);
    try {
      const chunk = await Promise.all(
        page.chunk.map(async (name) => ({ name, ...(await this.queue.backend.queue(name).counts()) })),
      );
      return { ...page, chunk };
    } catch (err) {
      // Redis gone: say so as the health check would, rather than a bare 500.
      throw new ApiError('M_UNAVAILABLE', `The queue backend did not answer: ${(err as Error).message}`);
    }
  }
}
