import { Module } from '@nestjs/common';
import { StorageModule } from '../storage/storage.module.js';
import { DeliveryService } from './delivery.service.js';

/** Store and forward to homes that are not connected, and DHT publishing, on the job queue. */
@Module({
  imports: [StorageModule.forFeature('accounts', 'homeNodes', 'replica')],
  providers: [DeliveryService],
  exports: [DeliveryService],
})
export class DeliveryModule {}
