import { Module } from '@nestjs/common';
import { NodeController } from './node.controller.js';
import { NodeInfoService } from './node-info.service.js';
import { AdminAuthGuard } from './admin-auth.guard.js';

/** The REST admin API under /admin/v1, bearer-token protected. */
@Module({
  controllers: [NodeController],
  providers: [NodeInfoService, AdminAuthGuard],
})
export class AdminModule {}
