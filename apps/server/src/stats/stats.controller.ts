import { Controller, Get } from '@nestjs/common';
import { AdminApi, AdminRoute, EXAMPLE_PEER_ID } from '../admin/admin-api.decorator.js';
import { StatsService, type StatsView } from './stats.service.js';

/** Statistics of this server. */
@AdminApi('stats')
@Controller('admin/v1/stats')
export class StatsController {
  constructor(private readonly stats: StatsService) {}

  /** GET /admin/v1/stats. */
  @AdminRoute({
    summary: 'Accounts, devices, rooms, events and ops held; ops/s; delivery backlog per home',
    description:
      'Counts are read from the database now. `ops_per_second` is the rate of `polyhome_ops_accepted_total` (ops ' +
      'accepted from other homes) over the last minute, with an hour of history sampled every 10 s (kept in memory: ' +
      'it restarts with the server). `delivery_backlog` is, per home of the accounts here, the ops held here it has ' +
      'not acknowledged, summed over its accounts (from the recorded acks; at most 100 homes, largest first). ' +
      "`room_delivery_backlog` is, per home of a room's servers, the room events the federation outbox still owes it " +
      '(at most 100 homes, largest first).',
    example: {
      accounts: 3,
      accounts_by_status: { active: 2, deactivated: 1 },
      devices: 4,
      rooms: 2,
      events: 31,
      ops: 57,
      ops_per_second: 0.5,
      ops_per_second_history: [{ at: '2026-11-30T18:29:20.000Z', ops_per_second: 0.4 }],
      delivery_backlog: [{ peer_id: EXAMPLE_PEER_ID, accounts: 2, pending_ops: 5 }],
      room_delivery_backlog: [{ peer_id: EXAMPLE_PEER_ID, pending_events: 12 }],
    },
    errors: [],
  })
  @Get()
  get(): Promise<StatsView> {
    return this.stats.stats();
  }
}
