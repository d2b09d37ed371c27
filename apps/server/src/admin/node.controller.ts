import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { AdminApi } from './admin-api.decorator.js';
import { NodeInfoDto } from './node-info.dto.js';
import { NodeInfoService, type NodeInfo } from './node-info.service.js';

/** The admin view of this server home. */
@Controller('admin/v1/node')
@AdminApi('node')
export class NodeController {
  constructor(private readonly nodeInfo: NodeInfoService) {}

  /** GET /admin/v1/node: version, uptime, backends and accounts hosted. */
  @Get()
  @ApiOperation({ summary: 'This server home: version, uptime, backends, accounts hosted' })
  @ApiOkResponse({ type: NodeInfoDto })
  get(): Promise<NodeInfo> {
    return this.nodeInfo.describe();
  }
}
