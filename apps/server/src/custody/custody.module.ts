import { Module } from '@nestjs/common';
import { StorageModule } from '../storage/storage.module.js';
import { AccountsModule } from '../accounts/accounts.module.js';
import { CustodyController } from './custody.controller.js';
import { CustodyService } from './custody.service.js';

/** Custody handover of hosted accounts' root keys. */
@Module({
  imports: [AccountsModule, StorageModule.forFeature('accounts')],
  controllers: [CustodyController],
  providers: [CustodyService],
})
export class CustodyModule {}
