import { Controller, Get, Query } from '@nestjs/common';
import { PageQueryDto, type Page } from '../common/pagination.js';
import { AdminApi, AdminRoute, BAD_PAGE_QUERY } from './admin-api.decorator.js';
import { QueuesPageDto, type QueueCountsDto } from './queues.dto.js';
import { QueuesService } from './queues.service.js';

/** The job queues of this server (delivery, DHT publishing). */
@Controller('admin/v1/queues')
@AdminApi('queues')
export class QueuesController {
  constructor(private readonly queues: QueuesService) {}

  /** GET /admin/v1/queues: job counts per queue (waiting, active, delayed, failed, completed), paginated. */
  @Get()
  @AdminRoute({
    summary: 'Job counts per queue (delivery, dht), read from the queue backend now',
    type: QueuesPageDto,
    example: {
      chunk: [
        { name: 'delivery', waiting: 0, delayed: 0, active: 0, completed: 12, failed: 0 },
        { name: 'dht', waiting: 0, delayed: 2, active: 0, completed: 3, failed: 1 },
      ],
    },
    errors: [BAD_PAGE_QUERY],
  })
  list(@Query() query: PageQueryDto): Promise<Page<QueueCountsDto>> {
    return this.queues.list(query);
  }
}
