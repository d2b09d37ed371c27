import type { DataSource } from 'typeorm';
import {
  AccountEntity,
  type AccountCustody,
  type AccountStatus,
  type DocumentEquivocation,
} from '../entities/account.entity.js';

/** An account row as the apps read it. */
export interface AccountRecord {
  /** Lowercase hex of the root public key. */
  serverName: string;
  userId: string;
  custody: AccountCustody;
  /** The root secret key sealed at rest (hosted custody only); never logged. */
  sealedRootKey: Buffer | null;
  /** scrypt hash of the password, when the hosted account has one. */
  passwordHash: string | null;
  status: AccountStatus;
  /** `seq` of the account document in force, as a decimal string (bigint). */
  docSeq: string;
  /** The last root-document equivocation seen, or null. */
  documentEquivocation: DocumentEquivocation | null;
  createdAt: Date;
  updatedAt: Date;
}

/** One page of accounts by server name. */
export interface AccountPage {
  /** Server name to start after (exclusive). */
  after?: string | undefined;
  limit: number;
}

/** The accounts this database hosts (`account`); their documents and ops are the replica store's. */
export interface AccountRepository {
  /** The account with this server name, if hosted. */
  findByServerName(serverName: string): Promise<AccountRecord | undefined>;
  /** Accounts in server-name order after `page.after`, at most `page.limit`. */
  page(page: AccountPage): Promise<AccountRecord[]>;
  /** Every account in user-id order (the client-side home holds a handful). */
  listByUserId(): Promise<AccountRecord[]>;
  /** The accounts whose user ID has this localpart (`@<localpart>:...`), in user-id order. */
  withLocalpart(localpart: string): Promise<AccountRecord[]>;
  /** How many accounts are hosted. */
  count(): Promise<number>;
  /** Sets (or clears) the password hash of an account. */
  setPasswordHash(serverName: string, passwordHash: string | null): Promise<void>;
  /**
   * Hands the root key to the user: erases the sealed key and sets custody to `self` in one conditional
   * UPDATE. True for the one caller that flipped the row; false when the key was no longer held.
   */
  releaseCustody(serverName: string): Promise<boolean>;
  /** Server names of the accounts this server keeps but no longer takes part in the sync of (taken down, migrated). */
  notServed(): Promise<string[]>;
  /**
   * Takes custody of an account held here: stores its sealed root key and sets custody `hosted` (a provider
   * migrating the account here handed the key over). True when the account is held here.
   */
  takeCustody(serverName: string, sealedRootKey: string): Promise<boolean>;
  /** Records the last root-document equivocation seen for an account (no-op for one not hosted). */
  flagDocumentEquivocation(serverName: string, equivocation: DocumentEquivocation): Promise<void>;
  /** Deletes an account; its documents, ops and state go by cascade. True when there was one. */
  remove(serverName: string): Promise<boolean>;
  /** Server names of the accounts whose document in force names this PeerId as a home. */
  namingHome(peerId: string): Promise<string[]>;
}

/** AccountRepository on TypeORM (PostgreSQL and PGlite). */
export class SqlAccountRepository implements AccountRepository {
  constructor(private readonly dataSource: DataSource) {}

  async findByServerName(serverName: string): Promise<AccountRecord | undefined> {
    return (await this.repo().findOneBy({ serverName })) ?? undefined;
  }

  async page(page: AccountPage): Promise<AccountRecord[]> {
    const qb = this.repo().createQueryBuilder('a').orderBy('a.server_name', 'ASC').take(page.limit);
    if (page.after !== undefined) qb.where('a.server_name > :after', { after: page.after });
    return qb.getMany();
  }

  listByUserId(): Promise<AccountRecord[]> {
    return this.repo().find({ order: { userId: 'ASC' } });
  }

  withLocalpart(localpart: string): Promise<AccountRecord[]> {
    // A prefix compared as a string, not LIKE: a localpart may hold `_`, a LIKE wildcard.
    const prefix = `@${localpart}:`;
    return this.repo()
      .createQueryBuilder('a')
      .where('left(a.user_id, :length) = :prefix', { length: prefix.length, prefix })
      .orderBy('a.user_id', 'ASC')
      .getMany();
  }

  count(): Promise<number> {
    return this.repo().count();
  }

  async setPasswordHash(serverName: string, passwordHash: string | null): Promise<void> {
    await this.repo().update({ serverName }, { passwordHash });
  }

  async flagDocumentEquivocation(serverName: string, equivocation: DocumentEquivocation): Promise<void> {
    await this.repo().update({ serverName }, { documentEquivocation: equivocation });
  }

  async notServed(): Promise<string[]> {
    const rows = await this.repo().find({
      select: { serverName: true },
      where: [{ status: 'taken_down' }, { status: 'migrated' }],
    });
    return rows.map((r) => r.serverName);
  }

  async takeCustody(serverName: string, sealedRootKey: string): Promise<boolean> {
    const result = await this.repo().update(
      { serverName },
      { custody: 'hosted', sealedRootKey: Buffer.from(sealedRootKey, 'utf8') },
    );
    return (result.affected ?? 0) > 0;
  }

  async releaseCustody(serverName: string): Promise<boolean> {
    const result = await this.dataSource
      .createQueryBuilder()
      .update(AccountEntity)
      .set({ custody: 'self', sealedRootKey: null })
      .where('server_name = :serverName AND custody = :hosted AND sealed_root_key IS NOT NULL', {
        serverName,
        hosted: 'hosted',
      })
      .execute();
    return result.affected === 1;
  }

  async remove(serverName: string): Promise<boolean> {
    const result = await this.repo().delete({ serverName });
    return (result.affected ?? 0) > 0;
  }

  async namingHome(peerId: string): Promise<string[]> {
    // jsonb containment (PostgreSQL and PGlite alike): the homes array holds an entry with this peer_id.
    const rows = await this.dataSource.query<Array<{ server_name: string }>>(
      `SELECT d.server_name FROM account_document d JOIN account a ON a.server_name = d.server_name AND a.doc_seq = d.seq
       WHERE d.document->'homes' @> $1::jsonb`,
      [JSON.stringify([{ peer_id: peerId }])],
    );
    return rows.map((r) => r.server_name);
  }

  private repo() {
    return this.dataSource.getRepository(AccountEntity);
  }
}
