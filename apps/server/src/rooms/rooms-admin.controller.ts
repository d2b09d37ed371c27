import { Body, Controller, Delete, Get, HttpCode, Param, Put, Query } from '@nestjs/common';
import {
  AdminApi,
  type AdminErrorAnswer,
  AdminRoute,
  BAD_PAGE_QUERY,
  EXAMPLE_PEER_ID,
  EXAMPLE_USER_ID,
  MISSING_REASON,
} from '../admin/admin-api.decorator.js';
import { BlockRoomDto, DeleteRoomDto, RoomListQueryDto } from '../admin/admin-actions.dto.js';
import type { Page } from '../common/pagination.js';
import {
  RoomsAdminService,
  type RoomBlockView,
  type RoomDeletionView,
  type RoomDetailView,
  type RoomSummaryView,
} from './rooms-admin.service.js';

const SERVER_NAME = EXAMPLE_USER_ID.slice(EXAMPLE_USER_ID.indexOf(':') + 1);
const ROOM = {
  room_id: `!Xq3xSVuPSx3bcKMB:${SERVER_NAME}`,
  room_version: '11',
  name: 'Team',
  joined_members: 1,
  events: 7,
  created_at: '2026-11-30T18:29:19.273Z',
  blocked: false,
};
const BLOCKED = {
  room_id: ROOM.room_id,
  block: true,
  reason: 'Spam room (ticket 4212)',
  blocked_at: '2026-12-01T09:12:44.016Z',
};

/** The refusals of the routes naming one room. */
const ROOM_ERRORS: AdminErrorAnswer[] = [
  {
    errcode: 'M_INVALID_PARAM',
    when: 'the room ID is malformed',
    error: 'Invalid room ID "room": expected !<id>:<server>.',
  },
  {
    errcode: 'M_NOT_FOUND',
    when: 'this server holds no such room',
    error: `This server holds no room ${ROOM.room_id}.`,
  },
];

/** The rooms this server's room engine holds. */
@AdminApi('rooms')
@Controller('admin/v1/rooms')
export class RoomsAdminController {
  constructor(private readonly rooms: RoomsAdminService) {}

  /** GET /admin/v1/rooms. */
  @AdminRoute({
    summary: 'Rooms this server holds, by room ID; `search` keeps those whose ID or name contains it',
    example: { chunk: [ROOM], next_from: 'eyJrIjoiIVhxM3hT...' },
    errors: [BAD_PAGE_QUERY],
  })
  @Get()
  list(@Query() query: RoomListQueryDto): Promise<Page<RoomSummaryView>> {
    return this.rooms.list(query);
  }

  /** GET /admin/v1/rooms/{roomId}. */
  @AdminRoute({
    summary: 'One room: members, the servers and homes involved, and its current state',
    example: {
      ...ROOM,
      members: [{ user_id: EXAMPLE_USER_ID, membership: 'join' }],
      servers: [
        {
          server_name: SERVER_NAME,
          members: 1,
          hosted_here: true,
          homes: [{ peer_id: EXAMPLE_PEER_ID, role: 'server', name: 'server' }],
        },
      ],
      state: [
        { type: 'm.room.name', state_key: '', event_id: '$abc', sender: EXAMPLE_USER_ID, content: { name: 'Team' } },
      ],
      state_truncated: false,
      members_truncated: false,
      block: null,
    },
    errors: ROOM_ERRORS,
  })
  @Get(':roomId')
  get(@Param('roomId') roomId: string): Promise<RoomDetailView> {
    return this.rooms.detail(roomId);
  }

  /** DELETE /admin/v1/rooms/{roomId}: the users hosted here leave and forget it. */
  @AdminRoute({
    summary:
      'Delete a room for the accounts hosted here: each of their users in it leaves (a leave event the room’s ' +
      'other servers see) and forgets it; body `{ reason, block? }`. Other accounts’ users and the events stay. ' +
      'With `block: true` the room is blocked first (as PUT .../block), so none of them can join it again.',
    example: {
      room_id: ROOM.room_id,
      left: [EXAMPLE_USER_ID],
      forgotten: [EXAMPLE_USER_ID],
      failed: [],
      blocked: true,
    },
    errors: [...ROOM_ERRORS, MISSING_REASON],
  })
  @Delete(':roomId')
  @HttpCode(200)
  remove(@Param('roomId') roomId: string, @Body() body: DeleteRoomDto): Promise<RoomDeletionView> {
    return this.rooms.delete(roomId, body.reason, body.block ?? false);
  }

  /** PUT /admin/v1/rooms/{roomId}/block (Synapse's room block). */
  @AdminRoute({
    summary:
      'Block a room, or lift its block; body `{ block, reason }`. While blocked, no user of this server may join ' +
      'it or be invited into it (refused with M_FORBIDDEN); members stay (DELETE the room to take them out). ' +
      'The room need not be held here. Written to the audit log (`room.block`, `room.unblock`).',
    example: BLOCKED,
    errors: [ROOM_ERRORS[0]!, MISSING_REASON],
  })
  @Put(':roomId/block')
  @HttpCode(200)
  block(@Param('roomId') roomId: string, @Body() body: BlockRoomDto): Promise<RoomBlockView> {
    return this.rooms.setBlock(roomId, body.block, body.reason);
  }

  /** GET /admin/v1/rooms/{roomId}/block. */
  @AdminRoute({
    summary: 'Whether a room is blocked here (held here or not), with why and since when',
    example: BLOCKED,
    errors: [ROOM_ERRORS[0]!],
  })
  @Get(':roomId/block')
  blockState(@Param('roomId') roomId: string): Promise<RoomBlockView> {
    return this.rooms.blockOf(roomId);
  }
}
