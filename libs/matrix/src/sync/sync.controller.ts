import { Controller, Get, Query, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import type { JsonRecord } from '../common/json.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { SyncService } from './sync.service.js';

/** /sync. */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class SyncController {
  constructor(private readonly syncService: SyncService) {}

  /** GET /_matrix/client/v3/sync */
  @Get('sync')
  sync(@Session() session: MatrixSession, @Query() query: Record<string, unknown>): Promise<JsonRecord> {
    return this.syncService.sync(session, query);
  }
}
