import { Controller, Get } from '@nestjs/common';
import { AdminApi, AdminRoute, EXAMPLE_PEER_ID } from './admin-api.decorator.js';
import { NodeInfoDto } from './node-info.dto.js';
import { NodeInfoService, type NodeInfo } from './node-info.service.js';

/** The admin view of this server home. */
@Controller('admin/v1/node')
@AdminApi('node')
export class NodeController {
  constructor(private readonly nodeInfo: NodeInfoService) {}

  /** GET /admin/v1/node: version, uptime, backends and accounts hosted. */
  @Get()
  @AdminRoute({
    summary: 'This server home: PeerId, listen addresses, version, uptime, backends, accounts hosted',
    type: NodeInfoDto,
    example: {
      peer_id: EXAMPLE_PEER_ID,
      listen_addrs: [`/ip4/203.0.113.5/tcp/4001/p2p/${EXAMPLE_PEER_ID}`],
      version: '0.1.0',
      uptime_seconds: 65,
      database: 'pglite',
      queue: 'in-process',
      accounts_hosted: 1,
      accounts_synced: 1,
    },
    errors: [],
  })
  get(): Promise<NodeInfo> {
    return this.nodeInfo.describe();
  }
}
