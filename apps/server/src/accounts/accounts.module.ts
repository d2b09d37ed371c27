import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { StorageModule } from '../storage/storage.module.js';
import { AccountActionsController } from './account-actions.controller.js';
import { AccountAdminService } from './account-admin.service.js';
import { AccountsController } from './accounts.controller.js';
import { AccountsService } from './accounts.service.js';
import { JobsController } from './jobs.controller.js';
import { MigrationController } from './migration.controller.js';
import { MigrationService } from './migration.service.js';
import { ResyncService } from './resync.service.js';

/** Hosting accounts: hosted and co-hosted, their state, homes and documents. Exports its service only. */
@Module({
  imports: [
    AuditModule,
    StorageModule.forFeature('accounts', 'homeNodes', 'transactions', 'replica', 'admin', 'matrix'),
  ],
  controllers: [AccountsController, AccountActionsController, JobsController, MigrationController],
  providers: [AccountsService, AccountAdminService, ResyncService, MigrationService],
  exports: [AccountsService],
})
export class AccountsModule {}
