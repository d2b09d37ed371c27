import { Body, Controller, Get, HttpCode, Post, UseFilters, UseGuards } from '@nestjs/common';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { AccessTokenGuard } from './access-token.guard.js';
import { AuthService, type LoginResponse } from './auth.service.js';
import { Session, type MatrixSession } from './session.js';

/** Spec versions this API follows closely enough for matrix-js-sdk and Element to talk to it. */
const SPEC_VERSIONS = ['v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11'];

/** Versions, login, logout, whoami. */
@Controller('_matrix/client')
@UseFilters(MatrixExceptionFilter)
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  /** GET /_matrix/client/versions */
  @Get('versions')
  getVersions(): { versions: string[]; unstable_features: Record<string, boolean> } {
    return { versions: SPEC_VERSIONS, unstable_features: {} };
  }

  /** GET /_matrix/client/v3/login */
  @Get('v3/login')
  getLoginFlows(): Promise<{ flows: Array<{ type: string }> }> {
    return this.auth.loginFlows();
  }

  /** POST /_matrix/client/v3/login */
  @Post('v3/login')
  @HttpCode(200)
  login(@Body() body: Record<string, unknown>): Promise<LoginResponse> {
    return this.auth.login(body);
  }

  /** POST /_matrix/client/v3/logout */
  @Post('v3/logout')
  @HttpCode(200)
  @UseGuards(AccessTokenGuard)
  logout(@Session() session: MatrixSession): Promise<Record<string, never>> {
    return this.auth.logout(session);
  }

  /** POST /_matrix/client/v3/logout/all */
  @Post('v3/logout/all')
  @HttpCode(200)
  @UseGuards(AccessTokenGuard)
  logoutAll(@Session() session: MatrixSession): Promise<Record<string, never>> {
    return this.auth.logoutAll(session);
  }

  /** GET /_matrix/client/v3/account/whoami */
  @Get('v3/account/whoami')
  @UseGuards(AccessTokenGuard)
  getTokenOwner(@Session() session: MatrixSession): { user_id: string; device_id: string; is_guest: boolean } {
    return { user_id: session.userId, device_id: session.deviceId, is_guest: false };
  }
}
