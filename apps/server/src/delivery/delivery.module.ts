import { Module } from '@nestjs/common';
import { DeliveryService } from './delivery.service.js';

/** Store and forward to homes that are not connected, and DHT publishing, on the job queue. */
@Module({
  providers: [DeliveryService],
  exports: [DeliveryService],
})
export class DeliveryModule {}
