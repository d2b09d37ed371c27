import { Controller, Get, Headers, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import type { JsonRecord } from '../common/json.js';
import { ROOM_VERSION } from '../rooms/room-events.js';

/** What this home can do, as clients ask it at start-up. */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class ServerController {
  /** GET /capabilities: only what this home really does (room versions: the ones /createRoom makes). */
  @Get('capabilities')
  capabilities(): { capabilities: JsonRecord } {
    return {
      capabilities: {
        'm.change_password': { enabled: false },
        'm.room_versions': { default: ROOM_VERSION, available: { [ROOM_VERSION]: 'stable' } },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.3pid_changes': { enabled: false },
        'm.get_login_token': { enabled: false },
      },
    };
  }

  /** GET /voip/turnServer: no TURN server is configured, which the spec answers with an empty object. */
  @Get('voip/turnServer')
  turnServer(): JsonRecord {
    return {};
  }
}

/** `/.well-known/matrix/client`: the home names itself, at the address the client used. */
@Controller('.well-known/matrix')
export class WellKnownController {
  @Get('client')
  client(
    @Headers('host') host: string | undefined,
    @Headers('x-forwarded-proto') proto: string | undefined,
  ): JsonRecord {
    const scheme = proto === 'https' ? 'https' : 'http';
    const safeHost = host !== undefined && /^[A-Za-z0-9.:[\]-]{1,300}$/.test(host) ? host : '127.0.0.1';
    return { 'm.homeserver': { base_url: `${scheme}://${safeHost}` } };
  }
}
