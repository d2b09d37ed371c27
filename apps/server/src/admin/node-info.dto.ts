import { ApiProperty } from '@nestjs/swagger';
import type { NodeInfo } from './node-info.service.js';

/** GET /admin/v1/node's answer, as the OpenAPI document describes it. */
export class NodeInfoDto implements NodeInfo {
  @ApiProperty({ example: '12D3KooW...', description: "This home's libp2p PeerId." })
  peer_id!: string;

  @ApiProperty({ type: [String], description: 'Multiaddrs the libp2p node listens on.' })
  listen_addrs!: string[];

  @ApiProperty({ example: '0.1.0' })
  version!: string;

  @ApiProperty({ description: 'Seconds since this process started.' })
  uptime_seconds!: number;

  @ApiProperty({ enum: ['postgres', 'pglite'] })
  database!: 'postgres' | 'pglite';

  @ApiProperty({ example: 'bullmq', description: '`bullmq` or `in-process`.' })
  queue!: string;

  @ApiProperty({ description: 'Accounts this server is a home of.' })
  accounts_hosted!: number;

  @ApiProperty({
    description: 'Of those, the accounts it takes part in the sync of (not taken down, not migrated away).',
  })
  accounts_synced!: number;
}
