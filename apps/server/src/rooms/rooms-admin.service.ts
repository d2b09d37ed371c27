import { Injectable } from '@nestjs/common';
import { clearRoom } from '@polyhome/home';
import type {
  AccountRepository,
  AdminRoomSummary,
  RoomBlockRow,
  SqlAdminStore,
  SqlReplicaStore,
  SqlRoomBlockStore,
} from '@polyhome/storage';
import { AuditService } from '../audit/audit.service.js';
import { ApiError } from '../common/api-error.js';
import { P2pService } from '../p2p/p2p.service.js';
import { decodeCursor, pageOfRows, type Page } from '../common/pagination.js';
import type { RoomListQueryDto } from '../admin/admin-actions.dto.js';
import { InjectRepository } from '../storage/storage.module.js';

/** A room as the admin API lists it. */
export interface RoomSummaryView {
  room_id: string;
  room_version: string;
  name: string | null;
  joined_members: number;
  events: number;
  created_at: string;
  /** An operator blocked the room here: no user of this server may join it or be invited into it. */
  blocked: boolean;
}

/** A server (account) taking part in a room, with the homes that serve it when it is hosted here. */
export interface RoomServerView {
  server_name: string;
  members: number;
  hosted_here: boolean;
  /** The homes of the account's document (PeerId, role, name), when it is hosted here. */
  homes: Array<{ peer_id: string; role: string; name: string }>;
}

/** One room in full. */
export interface RoomDetailView extends RoomSummaryView {
  members: Array<{ user_id: string; membership: string }>;
  servers: RoomServerView[];
  state: Array<{ type: string; state_key: string; event_id: string; sender: string; content: unknown }>;
  /** The room has more current state than the answer holds (1000 events). */
  state_truncated: boolean;
  /** The room has more members than the answer holds (1000). */
  members_truncated: boolean;
  /** The room's block, when an operator blocked it here. */
  block: { reason: string; blocked_at: string } | null;
}

/** A room's block as the admin API answers it (PUT and GET /admin/v1/rooms/{roomId}/block). */
export interface RoomBlockView {
  room_id: string;
  block: boolean;
  /** Why, when blocked. */
  reason?: string;
  blocked_at?: string;
}

/** What deleting a room did here, as the admin API answers it (and the audit log keeps it). */
export interface RoomDeletionView {
  room_id: string;
  /** Users of accounts hosted here who left the room (a leave event each). */
  left: string[];
  /** Users of accounts hosted here who forgot it. */
  forgotten: string[];
  /** Users the room engine refused to take out, with why. */
  failed: Array<{ user_id: string; error: string }>;
  /** The room was blocked first (`block: true` in the request). */
  blocked: boolean;
}

/** Rooms this server's room engine holds, read from its room store. */
@Injectable()
export class RoomsAdminService {
  constructor(
    @InjectRepository('admin') private readonly store: SqlAdminStore,
    @InjectRepository('accounts') private readonly accounts: AccountRepository,
    @InjectRepository('replica') private readonly replica: SqlReplicaStore,
    @InjectRepository('roomBlocks') private readonly blocks: SqlRoomBlockStore,
    private readonly p2p: P2pService,
    private readonly audit: AuditService,
  ) {}

  /** Rooms by room ID, a page at a time, optionally searched by ID or name. */
  async list(query: RoomListQueryDto): Promise<Page<RoomSummaryView>> {
    const rows = await this.store.roomsPage({
      after: query.from === undefined ? undefined : decodeCursor(query.from),
      limit: query.limit + 1,
      search: query.search,
    });
    return pageOfRows(rows, query.limit, summaryOf, (r) => r.room_id);
  }

  /**
   * Deletes a room for the accounts hosted here: each of their users in it leaves (through the room engine,
   * so the other homes and servers of the room see the leave) and forgets it, with an audit entry. Users of
   * other accounts and the room's events stay (the room lives on at its other servers). With `block`, the room
   * is blocked first, so none of them can join it again in between.
   */
  async delete(roomId: string, reason: string, block = false): Promise<RoomDeletionView> {
    const room = await this.heldRoom(roomId);
    const engine = this.p2p.home.rooms;
    if (engine === undefined) throw new ApiError('M_NOT_FOUND', `This server holds no room ${roomId}.`);
    if (block) await this.blocks.blockRoom(roomId, reason);
    const hosted: Array<{ serverName: string; userId: string; membership: string }> = [];
    for (const member of room.members) {
      if ((await this.accounts.findByServerName(member.serverName)) !== undefined) hosted.push(member);
    }
    const cleared = await clearRoom(engine, roomId, hosted, reason);
    const view: RoomDeletionView = {
      room_id: roomId,
      left: cleared.left,
      forgotten: cleared.forgotten,
      failed: cleared.failed.map((f) => ({ user_id: f.userId, error: f.error })),
      blocked: block,
    };
    const { room_id: _target, ...detail } = view;
    await this.audit.record({ action: 'room.delete', target: roomId, reason, detail });
    return view;
  }

  /**
   * Blocks a room (held here or not: a room can be blocked before anyone here joins it) or lifts its block, with
   * an audit entry (`room.block` or `room.unblock`, and whether it changed anything). While blocked, the room
   * engine refuses every join of a user hosted here and every invite of one (made here or countersigned here).
   */
  async setBlock(roomId: string, block: boolean, reason: string): Promise<RoomBlockView> {
    checkRoomId(roomId);
    let view: RoomBlockView;
    let changed: boolean;
    if (block) {
      changed = (await this.blocks.roomBlock(roomId)) === undefined;
      view = blockView(roomId, await this.blocks.blockRoom(roomId, reason));
    } else {
      changed = await this.blocks.unblockRoom(roomId);
      view = blockView(roomId, undefined);
    }
    await this.audit.record({
      action: block ? 'room.block' : 'room.unblock',
      target: roomId,
      reason,
      detail: { changed },
    });
    return view;
  }

  /** Whether a room is blocked here (held or not). */
  async blockOf(roomId: string): Promise<RoomBlockView> {
    checkRoomId(roomId);
    return blockView(roomId, await this.blocks.roomBlock(roomId));
  }

  /** One room: members, servers and their homes, current state. M_NOT_FOUND when this server holds no such room. */
  async detail(roomId: string): Promise<RoomDetailView> {
    const room = await this.heldRoom(roomId);
    const block = await this.blocks.roomBlock(roomId);
    const byServer = new Map<string, number>();
    for (const m of room.members) byServer.set(m.serverName, (byServer.get(m.serverName) ?? 0) + 1);
    const servers = await Promise.all(
      [...byServer]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(async ([serverName, members]): Promise<RoomServerView> => {
          const hosted = (await this.accounts.findByServerName(serverName)) !== undefined;
          const document = hosted ? await this.replica.document(serverName) : undefined;
          return {
            server_name: serverName,
            members,
            hosted_here: hosted,
            homes: (document?.homes ?? []).map((h) => ({ peer_id: h.peer_id, role: h.role, name: h.name })),
          };
        }),
    );
    return {
      ...summaryOf(room.summary),
      members: room.members.map((m) => ({ user_id: m.userId, membership: m.membership })),
      servers,
      state: room.state.map((s) => ({
        type: s.type,
        state_key: s.stateKey,
        event_id: s.eventId,
        sender: s.sender,
        content: s.content,
      })),
      state_truncated: room.stateTruncated,
      members_truncated: room.membersTruncated,
      block: block === undefined ? null : { reason: block.reason, blocked_at: block.blockedAt.toISOString() },
    };
  }

  /** The room as the admin store reads it: M_INVALID_PARAM for a malformed ID, M_NOT_FOUND when not held. */
  private async heldRoom(roomId: string) {
    checkRoomId(roomId);
    const room = await this.store.room(roomId);
    if (room === undefined) throw new ApiError('M_NOT_FOUND', `This server holds no room ${roomId}.`);
    return room;
  }
}

/** M_INVALID_PARAM unless `roomId` is a room ID. */
function checkRoomId(roomId: string): void {
  if (!/^![^:]{1,255}:.{1,255}$/s.test(roomId) || roomId.length > 255) {
    throw new ApiError(
      'M_INVALID_PARAM',
      `Invalid room ID ${JSON.stringify(roomId.slice(0, 64))}: expected !<id>:<server>.`,
    );
  }
}

function blockView(roomId: string, block: RoomBlockRow | undefined): RoomBlockView {
  return block === undefined
    ? { room_id: roomId, block: false }
    : { room_id: roomId, block: true, reason: block.reason, blocked_at: block.blockedAt.toISOString() };
}

function summaryOf(r: AdminRoomSummary): RoomSummaryView {
  return {
    room_id: r.roomId,
    room_version: r.roomVersion,
    name: r.name,
    joined_members: r.joinedMembers,
    events: r.events,
    created_at: r.createdAt.toISOString(),
    blocked: r.blocked,
  };
}
