import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { RoomsAdminController } from '../rooms/rooms-admin.controller.js';
import { RoomsAdminService } from '../rooms/rooms-admin.service.js';
import { StatsController } from '../stats/stats.controller.js';
import { StatsService } from '../stats/stats.service.js';
import { StorageModule } from '../storage/storage.module.js';
import { NodeController } from './node.controller.js';
import { NodeInfoService } from './node-info.service.js';
import { AdminAuthGuard } from './admin-auth.guard.js';
import { PeersController } from './peers.controller.js';
import { QueuesController } from './queues.controller.js';
import { QueuesService } from './queues.service.js';
import { RelayController } from './relay.controller.js';

/** The REST admin API under /admin/v1, bearer-token protected. */
@Module({
  imports: [StorageModule.forFeature('accounts', 'admin', 'replica', 'roomBlocks'), AuditModule],
  controllers: [
    NodeController,
    QueuesController,
    PeersController,
    RelayController,
    RoomsAdminController,
    StatsController,
  ],
  providers: [NodeInfoService, QueuesService, AdminAuthGuard, RoomsAdminService, StatsService],
})
export class AdminModule {}
