import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { Page } from '../common/pagination.js';

/** One queue's job counts, as GET /admin/v1/queues lists them. */
export class QueueCountsDto {
  @ApiProperty({ example: 'delivery' })
  name!: string;

  @ApiProperty({ description: 'Ready to run.' })
  waiting!: number;

  @ApiProperty({ description: 'Running now (on any instance, with BullMQ).' })
  active!: number;

  @ApiProperty({ description: 'Waiting for a delay or a retry backoff.' })
  delayed!: number;

  @ApiProperty({ description: 'Out of attempts, kept for inspection.' })
  failed!: number;

  @ApiProperty({ description: 'Completed and kept (most jobs are removed on completion).' })
  completed!: number;
}

/** A page of queues. */
export class QueuesPageDto implements Page<QueueCountsDto> {
  @ApiProperty({ type: [QueueCountsDto] })
  chunk!: QueueCountsDto[];

  @ApiPropertyOptional({ description: 'Cursor of the next page; absent on the last page.' })
  next_from?: string;
}
