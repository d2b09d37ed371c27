import { Body, Controller, Get, HttpCode, Param, Post, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import type { JsonRecord } from '../common/json.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { RoomsService } from './rooms.service.js';

/** The account's room memberships. */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class RoomsController {
  constructor(private readonly rooms: RoomsService) {}

  /** POST /_matrix/client/v3/createRoom */
  @Post('createRoom')
  @HttpCode(200)
  createRoom(@Session() session: MatrixSession, @Body() body: Record<string, unknown>): Promise<JsonRecord> {
    return this.rooms.create(session, body);
  }

  /** POST /_matrix/client/v3/join/{roomIdOrAlias} */
  @Post('join/:roomIdOrAlias')
  @HttpCode(200)
  joinRoom(@Session() session: MatrixSession, @Param('roomIdOrAlias') roomIdOrAlias: string): Promise<JsonRecord> {
    return this.rooms.join(session, roomIdOrAlias);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/join */
  @Post('rooms/:roomId/join')
  @HttpCode(200)
  joinRoomById(@Session() session: MatrixSession, @Param('roomId') roomId: string): Promise<JsonRecord> {
    return this.rooms.join(session, roomId);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/leave */
  @Post('rooms/:roomId/leave')
  @HttpCode(200)
  leaveRoom(@Session() session: MatrixSession, @Param('roomId') roomId: string): Promise<JsonRecord> {
    return this.rooms.leave(session, roomId);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/invite */
  @Post('rooms/:roomId/invite')
  @HttpCode(200)
  inviteUser(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.rooms.invite(session, roomId, body);
  }

  /** GET /_matrix/client/v3/joined_rooms */
  @Get('joined_rooms')
  getJoinedRooms(@Session() session: MatrixSession): Promise<JsonRecord> {
    return this.rooms.joined(session);
  }
}
