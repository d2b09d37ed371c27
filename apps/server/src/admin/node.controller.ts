import { Controller, Get, UseGuards } from '@nestjs/common';
import { AdminAuthGuard } from './admin-auth.guard.js';
import { NodeInfoService, type NodeInfo } from './node-info.service.js';

/** The admin view of this server home. */
@Controller('admin/v1/node')
@UseGuards(AdminAuthGuard)
export class NodeController {
  constructor(private readonly nodeInfo: NodeInfoService) {}

  /** GET /admin/v1/node: version, uptime, backends and accounts hosted. */
  @Get()
  get(): Promise<NodeInfo> {
    return this.nodeInfo.describe();
  }
}
