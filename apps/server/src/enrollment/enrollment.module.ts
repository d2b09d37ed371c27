import { Module } from '@nestjs/common';
import { StorageModule } from '../storage/storage.module.js';
import { AccountsModule } from '../accounts/accounts.module.js';
import { EnrollmentProtocolService } from './enrollment-protocol.service.js';
import { EnrollmentTokensController } from './enrollment-tokens.controller.js';
import { EnrollmentTokensService } from './enrollment-tokens.service.js';
import { EnrollmentController } from './enrollment.controller.js';
import { EnrollmentService } from './enrollment.service.js';

/** Enrollment tokens (admin), and enrollment over HTTP and libp2p. Exports its service only. */
@Module({
  imports: [AccountsModule, StorageModule.forFeature('enrollmentTokens')],
  controllers: [EnrollmentTokensController, EnrollmentController],
  providers: [EnrollmentTokensService, EnrollmentService, EnrollmentProtocolService],
  exports: [EnrollmentService],
})
export class EnrollmentModule {}
