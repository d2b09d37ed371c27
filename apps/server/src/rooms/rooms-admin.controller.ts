import { Controller, Get, Param, Query } from '@nestjs/common';
import {
  AdminApi,
  AdminRoute,
  BAD_PAGE_QUERY,
  EXAMPLE_PEER_ID,
  EXAMPLE_USER_ID,
} from '../admin/admin-api.decorator.js';
import { RoomListQueryDto } from '../admin/admin-actions.dto.js';
import type { Page } from '../common/pagination.js';
import { RoomsAdminService, type RoomDetailView, type RoomSummaryView } from './rooms-admin.service.js';

const SERVER_NAME = EXAMPLE_USER_ID.slice(EXAMPLE_USER_ID.indexOf(':') + 1);
const ROOM = {
  room_id: `!Xq3xSVuPSx3bcKMB:${SERVER_NAME}`,
  room_version: '11',
  name: 'Team',
  joined_members: 1,
  events: 7,
  created_at: '2026-11-30T18:29:19.273Z',
};

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
    },
    errors: [
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
    ],
  })
  @Get(':roomId')
  get(@Param('roomId') roomId: string): Promise<RoomDetailView> {
    return this.rooms.detail(roomId);
  }
}
