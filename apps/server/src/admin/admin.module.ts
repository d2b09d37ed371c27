import { Module } from '@nestjs/common';
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
  imports: [StorageModule.forFeature('accounts')],
  controllers: [NodeController, QueuesController, PeersController, RelayController],
  providers: [NodeInfoService, QueuesService, AdminAuthGuard],
})
export class AdminModule {}
