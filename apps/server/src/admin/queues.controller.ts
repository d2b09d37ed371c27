import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { PageQueryDto, type Page } from '../common/pagination.js';
import { AdminApi } from './admin-api.decorator.js';
import { QueuesPageDto, type QueueCountsDto } from './queues.dto.js';
import { QueuesService } from './queues.service.js';

/** The job queues of this server (delivery, DHT publishing). */
@Controller('admin/v1/queues')
@AdminApi('queues')
export class QueuesController {
  constructor(private readonly queues: QueuesService) {}

  /** GET /admin/v1/queues: job counts per queue (waiting, active, delayed, failed, completed), paginated. */
  @Get()
  @ApiOperation({ summary: 'Job counts per queue' })
  @ApiOkResponse({ type: QueuesPageDto })
  list(@Query() query: PageQueryDto): Promise<Page<QueueCountsDto>> {
    return this.queues.list(query);
  }
}
