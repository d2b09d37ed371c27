import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Post,
  Put,
  Query,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import type { JsonRecord } from '../common/json.js';
import { RoomKeysService, type RoomKeysCount } from './room-keys.service.js';

type Empty = Record<string, never>;

/** `?version=` of the keys routes: a string (repeated or absent: '' and the service says it is required). */
function versionOf(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** Server-side key backup of the session's own account (`/room_keys`), the same on every home of it. */
@Controller('_matrix/client/v3/room_keys')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class RoomKeysController {
  constructor(private readonly keys: RoomKeysService) {}

  @Post('version')
  @HttpCode(200)
  createVersion(@Session() s: MatrixSession, @Body() body: unknown): Promise<{ version: string }> {
    return this.keys.createVersion(s, body);
  }

  @Get('version')
  currentVersion(@Session() s: MatrixSession): Promise<JsonRecord> {
    return this.keys.getVersion(s);
  }

  @Get('version/:version')
  getVersion(@Session() s: MatrixSession, @Param('version') version: string): Promise<JsonRecord> {
    return this.keys.getVersion(s, version);
  }

  @Put('version/:version')
  updateVersion(@Session() s: MatrixSession, @Param('version') version: string, @Body() body: unknown): Promise<Empty> {
    return this.keys.updateVersion(s, version, body);
  }

  @Delete('version/:version')
  deleteVersion(@Session() s: MatrixSession, @Param('version') version: string): Promise<Empty> {
    return this.keys.deleteVersion(s, version);
  }

  @Get('keys')
  getAll(@Session() s: MatrixSession, @Query('version') version: unknown): Promise<JsonRecord> {
    return this.keys.getKeys(s, { version: versionOf(version) });
  }

  @Get('keys/:roomId')
  getRoom(
    @Session() s: MatrixSession,
    @Param('roomId') roomId: string,
    @Query('version') version: unknown,
  ): Promise<JsonRecord> {
    return this.keys.getKeys(s, { version: versionOf(version), roomId });
  }

  @Get('keys/:roomId/:sessionId')
  getSession(
    @Session() s: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('sessionId') sessionId: string,
    @Query('version') version: unknown,
  ): Promise<JsonRecord> {
    return this.keys.getKeys(s, { version: versionOf(version), roomId, sessionId });
  }

  @Put('keys')
  putAll(
    @Session() s: MatrixSession,
    @Query('version') version: unknown,
    @Body() body: unknown,
  ): Promise<RoomKeysCount> {
    return this.keys.putKeys(s, { version: versionOf(version) }, body);
  }

  @Put('keys/:roomId')
  putRoom(
    @Session() s: MatrixSession,
    @Param('roomId') roomId: string,
    @Query('version') version: unknown,
    @Body() body: unknown,
  ): Promise<RoomKeysCount> {
    return this.keys.putKeys(s, { version: versionOf(version), roomId }, body);
  }

  @Put('keys/:roomId/:sessionId')
  putSession(
    @Session() s: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('sessionId') sessionId: string,
    @Query('version') version: unknown,
    @Body() body: unknown,
  ): Promise<RoomKeysCount> {
    return this.keys.putKeys(s, { version: versionOf(version), roomId, sessionId }, body);
  }

  @Delete('keys')
  deleteAll(@Session() s: MatrixSession, @Query('version') version: unknown): Promise<RoomKeysCount> {
    return this.keys.deleteKeys(s, { version: versionOf(version) });
  }

  @Delete('keys/:roomId')
  deleteRoom(
    @Session() s: MatrixSession,
    @Param('roomId') roomId: string,
    @Query('version') version: unknown,
  ): Promise<RoomKeysCount> {
    return this.keys.deleteKeys(s, { version: versionOf(version), roomId });
  }

  @Delete('keys/:roomId/:sessionId')
  deleteSession(
    @Session() s: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('sessionId') sessionId: string,
    @Query('version') version: unknown,
  ): Promise<RoomKeysCount> {
    return this.keys.deleteKeys(s, { version: versionOf(version), roomId, sessionId });
  }
}
