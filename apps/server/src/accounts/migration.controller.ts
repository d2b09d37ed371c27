import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ErrorBodyDto } from '../common/error-body.dto.js';
import { AccountsService } from './accounts.service.js';
import { UserMigrateDto } from './migration.dto.js';
import { MigrationService } from './migration.service.js';
import { ResyncService, type JobView } from './resync.service.js';

/**
 * The user's side of a migration to another provider, authenticated by the account's password (no admin token:
 * moving the key is the user's own act). The job id it answers is the user's handle on the progress.
 */
@Controller('_polyhome/v1/migration')
@ApiTags('migration')
export class MigrationController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly migrations: MigrationService,
    private readonly jobs: ResyncService,
  ) {}

  /** POST /_polyhome/v1/migration: starts moving the account to the server at `to`. */
  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Move a hosted account to another provider (add it as a home, catch it up, hand over the key, leave)',
  })
  @ApiAcceptedResponse({ description: 'The migration job; poll GET /_polyhome/v1/migration/{jobId}.' })
  @ApiForbiddenResponse({ description: 'Wrong user ID or password, or the user holds the key.', type: ErrorBodyDto })
  async start(@Body() body: UserMigrateDto): Promise<JobView> {
    const row = await this.accounts.checkPassword(body.user_id, body.password);
    const id = await this.migrations.start({
      userId: row.userId,
      to: body.to,
      token: body.token,
      name: body.name,
      reason: 'Requested by the user.',
      startedBy: 'user',
    });
    return this.jobs.job(id);
  }

  /** GET /_polyhome/v1/migration/{jobId}: the job's state and step (its id is the capability). */
  @Get(':jobId')
  @ApiOperation({ summary: 'A migration’s state and step' })
  @ApiOkResponse({ description: 'The job, as GET /admin/v1/jobs/{id} answers it.' })
  async job(@Param('jobId') jobId: string): Promise<JobView> {
    return this.jobs.migrationJob(jobId);
  }
}
