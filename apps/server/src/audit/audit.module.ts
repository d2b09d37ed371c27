import { Module } from '@nestjs/common';
import { StorageModule } from '../storage/storage.module.js';
import { AuditController } from './audit.controller.js';
import { AuditService } from './audit.service.js';

/** The admin audit log (`admin_audit`), written by every destructive admin route and read at /admin/v1/audit. */
@Module({
  imports: [StorageModule.forFeature('admin')],
  controllers: [AuditController],
  providers: [AuditService],
  exports: [AuditService],
})
export class AuditModule {}
