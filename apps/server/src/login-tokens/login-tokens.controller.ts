import { Controller, Param, Post } from '@nestjs/common';
import { AdminApi, AdminRoute, USER_ID_ERRORS } from '../admin/admin-api.decorator.js';
import { LoginTokenDto } from './login-tokens.dto.js';
import { LoginTokensService } from './login-tokens.service.js';

/** Login tokens for hosted and co-hosted accounts, made by operators for a Matrix client. */
@Controller('admin/v1/accounts/:userId/login-token')
@AdminApi('accounts')
export class LoginTokensController {
  constructor(private readonly loginTokens: LoginTokensService) {}

  /** POST /admin/v1/accounts/{userId}/login-token: a 2-minute single-use `m.login.token`. */
  @Post()
  @AdminRoute({
    summary: 'Make a single-use m.login.token for a Matrix client (2 minutes)',
    status: 201,
    type: LoginTokenDto,
    example: { login_token: 'phl_8Mm14OrBGwuEySofwgxrtRktjGiMBP-lI01IKAoafVw', expires_in_ms: 120000 },
    errors: USER_ID_ERRORS,
  })
  create(@Param('userId') userId: string): Promise<LoginTokenDto> {
    return this.loginTokens.create(userId);
  }
}
