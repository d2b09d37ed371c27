import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation } from '@nestjs/swagger';
import { PageQueryDto, pageOf, type Page } from '../common/pagination.js';
import { P2pService, type PeerView } from '../p2p/p2p.service.js';
import { AdminApi } from './admin-api.decorator.js';

/** The libp2p peers this server is connected to. */
@Controller('admin/v1/peers')
@AdminApi('peers')
export class PeersController {
  constructor(private readonly p2p: P2pService) {}

  /** GET /admin/v1/peers: connected peers, their addresses and round-trip time, paginated by PeerId. */
  @Get()
  @ApiOperation({ summary: 'Connected libp2p peers' })
  list(@Query() query: PageQueryDto): Page<PeerView> {
    return pageOf(this.p2p.peers(), (p) => p.peer_id, query);
  }
}
