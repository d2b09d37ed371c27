import { Controller, Get, Query } from '@nestjs/common';
import { PageQueryDto, pageOf, type Page } from '../common/pagination.js';
import { P2pService, type PeerView } from '../p2p/p2p.service.js';
import { AdminApi, AdminRoute, BAD_PAGE_QUERY, EXAMPLE_PEER_ID } from './admin-api.decorator.js';

/** The libp2p peers this server is connected to. */
@Controller('admin/v1/peers')
@AdminApi('peers')
export class PeersController {
  constructor(private readonly p2p: P2pService) {}

  /** GET /admin/v1/peers: connected peers, their addresses and round-trip time, paginated by PeerId. */
  @Get()
  @AdminRoute({
    summary: 'Connected libp2p peers, their addresses and round-trip time',
    example: { chunk: [{ peer_id: EXAMPLE_PEER_ID, addrs: ['/ip4/203.0.113.5/tcp/4001'], rtt_ms: 12 }] },
    errors: [BAD_PAGE_QUERY],
  })
  list(@Query() query: PageQueryDto): Page<PeerView> {
    return pageOf(this.p2p.peers(), (p) => p.peer_id, query);
  }
}
