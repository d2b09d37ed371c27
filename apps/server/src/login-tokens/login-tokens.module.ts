import { Module } from '@nestjs/common';
import { StorageModule } from '../storage/storage.module.js';
import { AccountsModule } from '../accounts/accounts.module.js';
import { LoginTokensController } from './login-tokens.controller.js';
import { LoginTokensService } from './login-tokens.service.js';

/** `m.login.token`s: made over the admin API, spent by the Matrix /login. Exports its service only. */
@Module({
  imports: [AccountsModule, StorageModule.forFeature('loginTokens')],
  controllers: [LoginTokensController],
  providers: [LoginTokensService],
  exports: [LoginTokensService],
})
export class LoginTokensModule {}
