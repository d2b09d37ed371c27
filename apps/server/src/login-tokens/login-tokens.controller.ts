import { Controller, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOperation } from '@nestjs/swagger';
import { AdminApi } from '../admin/admin-api.decorator.js';
import { LoginTokenDto } from './login-tokens.dto.js';
import { LoginTokensService } from './login-tokens.service.js';

/** Login tokens for hosted and co-hosted accounts, made by operators for a Matrix client. */
@Controller('admin/v1/accounts/:userId/login-token')
@AdminApi('accounts')
export class LoginTokensController {
  constructor(private readonly loginTokens: LoginTokensService) {}

  /** POST /admin/v1/accounts/{userId}/login-token: a 2-minute single-use `m.login.token`. */
  @Post()
  @ApiOperation({ summary: 'Make a single-use m.login.token for a Matrix client (2 minutes)' })
  @ApiCreatedResponse({ type: LoginTokenDto })
  create(@Param('userId') userId: string): Promise<LoginTokenDto> {
    return this.loginTokens.create(userId);
  }
}
