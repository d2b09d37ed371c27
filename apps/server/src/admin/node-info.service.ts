import { Injectable } from '@nestjs/common';
import type { AccountRepository } from '@polyhome/storage';
import { InjectRepository } from '../storage/storage.module.js';
import { StorageService } from '../storage/storage.service.js';
import { P2pService } from '../p2p/p2p.service.js';
import { QueueService } from '../queue/queue.service.js';
import { VERSION } from '../version.js';

/** What GET /admin/v1/node answers. */
export interface NodeInfo {
  peer_id: string;
  listen_addrs: string[];
  version: string;
  uptime_seconds: number;
  database: 'postgres' | 'pglite';
  queue: string;
  accounts_hosted: number;
  accounts_synced: number;
}

/** Describes this server home for operators. */
@Injectable()
export class NodeInfoService {
  constructor(
    private readonly storage: StorageService,
    @InjectRepository('accounts') private readonly accounts: AccountRepository,
    private readonly queue: QueueService,
    private readonly p2p: P2pService,
  ) {}

  /** Collects the figures; the account count comes from the database, not a cache. */
  async describe(): Promise<NodeInfo> {
    return {
      peer_id: this.p2p.peerId,
      listen_addrs: this.p2p.addrs(),
      version: VERSION,
      uptime_seconds: Math.floor(process.uptime()),
      database: this.storage.backend,
      queue: this.queue.kind,
      accounts_hosted: await this.accounts.count(),
      accounts_synced: this.p2p.home.hosted().length,
    };
  }
}
