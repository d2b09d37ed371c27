import { Body, Controller, Get, HttpCode, Param, Post, Put, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import type { JsonRecord } from '../common/json.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { EphemeralService } from './ephemeral.service.js';

type Empty = Record<string, never>;

/** Typing, receipts, read markers and presence (client-server API). */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class EphemeralController {
  constructor(private readonly ephemeral: EphemeralService) {}

  /** PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId} */
  @Put('rooms/:roomId/typing/:userId')
  typing(
    @Session() s: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('userId') userId: string,
    @Body() body: unknown,
  ): Promise<Empty> {
    return this.ephemeral.typing(s, roomId, userId, body);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId} */
  @Post('rooms/:roomId/receipt/:receiptType/:eventId')
  @HttpCode(200)
  receipt(
    @Session() s: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('receiptType') receiptType: string,
    @Param('eventId') eventId: string,
    @Body() body: unknown,
  ): Promise<Empty> {
    return this.ephemeral.receipt(s, roomId, receiptType, eventId, body);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/read_markers */
  @Post('rooms/:roomId/read_markers')
  @HttpCode(200)
  readMarkers(@Session() s: MatrixSession, @Param('roomId') roomId: string, @Body() body: unknown): Promise<Empty> {
    return this.ephemeral.readMarkers(s, roomId, body);
  }

  /** PUT /_matrix/client/v3/presence/{userId}/status */
  @Put('presence/:userId/status')
  setPresence(@Session() s: MatrixSession, @Param('userId') userId: string, @Body() body: unknown): Promise<Empty> {
    return this.ephemeral.setPresence(s, userId, body);
  }

  /** GET /_matrix/client/v3/presence/{userId}/status */
  @Get('presence/:userId/status')
  presence(@Session() s: MatrixSession, @Param('userId') userId: string): Promise<JsonRecord> {
    return this.ephemeral.presence(s, userId);
  }
}
