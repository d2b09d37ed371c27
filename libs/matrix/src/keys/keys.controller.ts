import { Body, Controller, Get, HttpCode, Post, Query, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import type { JsonRecord } from '../common/json.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { KeysService } from './keys.service.js';

/** End-to-end encryption keys. */
@Controller('_matrix/client/v3/keys')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class KeysController {
  constructor(private readonly keys: KeysService) {}

  /** POST /_matrix/client/v3/keys/upload */
  @Post('upload')
  @HttpCode(200)
  uploadKeys(@Session() session: MatrixSession, @Body() body: Record<string, unknown>): Promise<JsonRecord> {
    return this.keys.upload(session, body);
  }

  /** POST /_matrix/client/v3/keys/query */
  @Post('query')
  @HttpCode(200)
  getKeys(@Session() session: MatrixSession, @Body() body: Record<string, unknown>): Promise<JsonRecord> {
    return this.keys.query(session, body);
  }

  /** POST /_matrix/client/v3/keys/claim */
  @Post('claim')
  @HttpCode(200)
  claimKeys(@Session() session: MatrixSession, @Body() body: Record<string, unknown>): Promise<JsonRecord> {
    return this.keys.claim(session, body);
  }

  /** GET /_matrix/client/v3/keys/changes */
  @Get('changes')
  getKeysChanges(@Session() session: MatrixSession, @Query() query: Record<string, unknown>): Promise<JsonRecord> {
    return this.keys.changes(session, query['from'], query['to']);
  }

  /** POST /_matrix/client/v3/keys/device_signing/upload */
  @Post('device_signing/upload')
  @HttpCode(200)
  uploadCrossSigningKeys(
    @Session() session: MatrixSession,
    @Body() body: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.keys.uploadCrossSigning(session, body);
  }

  /** POST /_matrix/client/v3/keys/signatures/upload */
  @Post('signatures/upload')
  @HttpCode(200)
  uploadCrossSigningSignatures(
    @Session() session: MatrixSession,
    @Body() body: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.keys.uploadSignatures(session, body);
  }
}
