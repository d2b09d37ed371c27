import type { DataSource } from 'typeorm';
import { HomeNodeEntity, type HomeRole } from '../entities/home-node.entity.js';

/** A home process starting on this database. */
export interface HomeNodeRegistration {
  peerId: string;
  /** The raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  role: HomeRole;
}

/** The home processes that have run on this database (`home_node`): the server instances sharing it. */
export interface HomeNodeRepository {
  /** Records (or refreshes) a home starting now. */
  register(home: HomeNodeRegistration): Promise<void>;
  /** PeerIds of every home recorded on this database. */
  peerIds(): Promise<string[]>;
}

/** HomeNodeRepository on TypeORM (PostgreSQL and PGlite). */
export class SqlHomeNodeRepository implements HomeNodeRepository {
  constructor(private readonly dataSource: DataSource) {}

  async register(home: HomeNodeRegistration): Promise<void> {
    await this.dataSource.getRepository(HomeNodeEntity).upsert(
      {
        peerId: home.peerId,
        publicKey: Buffer.from(home.publicKey),
        role: home.role,
        lastStartedAt: new Date(),
      },
      ['peerId'],
    );
  }

  async peerIds(): Promise<string[]> {
    const rows = await this.dataSource.getRepository(HomeNodeEntity).find({ select: { peerId: true } });
    return rows.map((r) => r.peerId);
  }
}
