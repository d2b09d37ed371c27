import { Controller, Get } from '@nestjs/common';
import { P2pService, type RelayView } from '../p2p/p2p.service.js';
import { AdminApi, AdminRoute, EXAMPLE_PEER_ID } from './admin-api.decorator.js';

/** The circuit relay this server runs for the client homes of its accounts. */
@Controller('admin/v1/relay')
@AdminApi('relay')
export class RelayController {
  constructor(private readonly p2p: P2pService) {}

  /** GET /admin/v1/relay: whether the relay runs, its limits, and the reservations it holds. */
  @Get()
  @AdminRoute({
    summary: 'The circuit relay: its limits and the reservations of client homes it holds',
    example: {
      enabled: true,
      limits: { max_reservations: 128, reservation_ttl_ms: 7_200_000, data_limit_bytes: 0, duration_limit_ms: 0 },
      reservations: [
        { peer_id: EXAMPLE_PEER_ID, addr: '/ip4/198.51.100.7/tcp/53211', expires_at: '2026-12-01T02:00:00.000Z' },
      ],
    },
    errors: [],
  })
  relay(): RelayView {
    return this.p2p.relay();
  }
}
