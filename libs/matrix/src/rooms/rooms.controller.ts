import { Body, Controller, Get, HttpCode, Param, Post, Put, Query, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import type { JsonRecord } from '../common/json.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { RoomApiService } from './room-api.service.js';
import { RoomsService } from './rooms.service.js';

/**
 * Rooms: over the home's room engine when it has one (RoomApiService); else the account's membership-only
 * view (RoomsService) for what that view can answer, and M_UNRECOGNIZED for the rest.
 */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class RoomsController {
  constructor(
    private readonly rooms: RoomsService,
    private readonly api: RoomApiService,
  ) {}

  /** POST /_matrix/client/v3/createRoom */
  @Post('createRoom')
  @HttpCode(200)
  createRoom(@Session() session: MatrixSession, @Body() body: Record<string, unknown>): Promise<JsonRecord> {
    return this.api.available ? this.api.createRoom(session, body) : this.rooms.create(session, body);
  }

  /** POST /_matrix/client/v3/join/{roomIdOrAlias} */
  @Post('join/:roomIdOrAlias')
  @HttpCode(200)
  async joinRoom(
    @Session() session: MatrixSession,
    @Param('roomIdOrAlias') roomIdOrAlias: string,
    @Query() query: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return (await this.api.serves(session, roomIdOrAlias))
      ? this.api.join(session, roomIdOrAlias, viaOf(query))
      : this.rooms.join(session, roomIdOrAlias);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/join */
  @Post('rooms/:roomId/join')
  @HttpCode(200)
  async joinRoomById(@Session() session: MatrixSession, @Param('roomId') roomId: string): Promise<JsonRecord> {
    return (await this.api.serves(session, roomId)) ? this.api.join(session, roomId) : this.rooms.join(session, roomId);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/leave */
  @Post('rooms/:roomId/leave')
  @HttpCode(200)
  async leaveRoom(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<JsonRecord> {
    // With the engine, a room not held is left there too: an invite or knock over federation (make_leave).
    return this.api.available ? this.api.leave(session, roomId, body) : this.rooms.leave(session, roomId);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/invite */
  @Post('rooms/:roomId/invite')
  @HttpCode(200)
  inviteUser(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.api.available
      ? this.api.changeMembership(session, roomId, 'invite', body)
      : this.rooms.invite(session, roomId, body);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/kick */
  @Post('rooms/:roomId/kick')
  @HttpCode(200)
  kick(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.api.changeMembership(session, roomId, 'kick', body);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/ban */
  @Post('rooms/:roomId/ban')
  @HttpCode(200)
  ban(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.api.changeMembership(session, roomId, 'ban', body);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/unban */
  @Post('rooms/:roomId/unban')
  @HttpCode(200)
  unban(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.api.changeMembership(session, roomId, 'unban', body);
  }

  /** POST /_matrix/client/v3/rooms/{roomId}/forget */
  @Post('rooms/:roomId/forget')
  @HttpCode(200)
  forget(@Session() session: MatrixSession, @Param('roomId') roomId: string): Promise<JsonRecord> {
    return this.api.forget(session, roomId);
  }

  /** GET /_matrix/client/v3/joined_rooms */
  @Get('joined_rooms')
  getJoinedRooms(@Session() session: MatrixSession): Promise<JsonRecord> {
    return this.api.available ? this.api.joinedRooms(session) : this.rooms.joined(session);
  }
}

/** Room events: sending, state, reading and paging (room engine only). */
@Controller('_matrix/client/v3/rooms/:roomId')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class RoomEventsController {
  constructor(private readonly api: RoomApiService) {}

  /** PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId} */
  @Put('send/:eventType/:txnId')
  send(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('eventType') eventType: string,
    @Param('txnId') txnId: string,
    @Body() body: unknown,
  ): Promise<JsonRecord> {
    return this.api.send(session, roomId, eventType, txnId, body);
  }

  /** PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey} */
  @Put('state/:eventType/:stateKey')
  setState(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('eventType') eventType: string,
    @Param('stateKey') stateKey: string,
    @Body() body: unknown,
  ): Promise<JsonRecord> {
    return this.api.setState(session, roomId, eventType, stateKey, body);
  }

  /** PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType} (the empty state key) */
  @Put('state/:eventType')
  setStateEmptyKey(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('eventType') eventType: string,
    @Body() body: unknown,
  ): Promise<JsonRecord> {
    return this.api.setState(session, roomId, eventType, undefined, body);
  }

  /** GET /_matrix/client/v3/rooms/{roomId}/state */
  @Get('state')
  state(@Session() session: MatrixSession, @Param('roomId') roomId: string): Promise<JsonRecord[]> {
    return this.api.state(session, roomId);
  }

  /** GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey} */
  @Get('state/:eventType/:stateKey')
  stateEvent(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('eventType') eventType: string,
    @Param('stateKey') stateKey: string,
    @Query('format') format: unknown,
  ): Promise<JsonRecord> {
    return this.api.stateEvent(session, roomId, eventType, stateKey, format);
  }

  /** GET /_matrix/client/v3/rooms/{roomId}/state/{eventType} (the empty state key) */
  @Get('state/:eventType')
  stateEventEmptyKey(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('eventType') eventType: string,
    @Query('format') format: unknown,
  ): Promise<JsonRecord> {
    return this.api.stateEvent(session, roomId, eventType, undefined, format);
  }

  /** GET /_matrix/client/v3/rooms/{roomId}/messages */
  @Get('messages')
  messages(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Query() query: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.api.messages(session, roomId, query);
  }

  /** GET /_matrix/client/v3/rooms/{roomId}/members */
  @Get('members')
  members(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Query() query: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.api.members(session, roomId, query);
  }

  /** GET /_matrix/client/v3/rooms/{roomId}/joined_members */
  @Get('joined_members')
  joinedMembers(@Session() session: MatrixSession, @Param('roomId') roomId: string): Promise<JsonRecord> {
    return this.api.joinedMembers(session, roomId);
  }

  /** GET /_matrix/client/v3/rooms/{roomId}/event/{eventId} */
  @Get('event/:eventId')
  event(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('eventId') eventId: string,
  ): Promise<JsonRecord> {
    return this.api.event(session, roomId, eventId);
  }

  /** GET /_matrix/client/v3/rooms/{roomId}/context/{eventId} */
  @Get('context/:eventId')
  context(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('eventId') eventId: string,
    @Query() query: Record<string, unknown>,
  ): Promise<JsonRecord> {
    return this.api.context(session, roomId, eventId, query);
  }

  /** PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId} */
  @Put('redact/:eventId/:txnId')
  redact(
    @Session() session: MatrixSession,
    @Param('roomId') roomId: string,
    @Param('eventId') eventId: string,
    @Param('txnId') txnId: string,
    @Body() body: unknown,
  ): Promise<JsonRecord> {
    return this.api.redact(session, roomId, eventId, txnId, body);
  }
}

/** The servers to join through: `via` (v1.12) and the older `server_name`, each once or repeated. */
function viaOf(query: Record<string, unknown>): string[] {
  const values = [query['via'], query['server_name']].flatMap((v) => (Array.isArray(v) ? v : [v]));
  return values.filter((v): v is string => typeof v === 'string' && v.length > 0 && v.length <= 255).slice(0, 20);
}
