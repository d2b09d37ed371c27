import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import {
  ADMIN_JOBS_QUEUE,
  deviceDeletions,
  devicesOfHome,
  MigrationJobs,
  MigrationRefusal,
  peerIdOfMultiaddr,
  type AdminJobData,
  type MigrationParams,
} from '@polyhome/home';
import {
  decodeBase64,
  encodeBase64,
  homeStatus,
  parseUserId,
  sealRootKey,
  SecretKey,
  serverNameFromPublicKey,
  verifyAccountDocument,
  type AccountDocument,
} from '@polyhome/identity';
import {
  CustodyHandler,
  CustodyRefusedError,
  handOverCustody,
  type CustodyAnswer,
  type CustodyErrorAnswer,
} from '@polyhome/p2p';
import { SqlReplicaStore, type AccountRepository, type SqlAdminStore } from '@polyhome/storage';
import type { Logger } from 'pino';
import { AuditService } from '../audit/audit.service.js';
import { ApiError } from '../common/api-error.js';
import { PINO_LOGGER } from '../logging/logger.js';
import { P2pService } from '../p2p/p2p.service.js';
import { QueueService } from '../queue/queue.service.js';
import { SERVER_SECRETS, type ServerSecrets } from '../secrets/secrets.js';
import { InjectRepository } from '../storage/storage.module.js';
import { AccountsService } from './accounts.service.js';

/** Refusals of the new home that are its verdict (it stored nothing); anything else is retried. */
const FINAL_REFUSALS = new Set([
  'M_FORBIDDEN',
  'M_INVALID_PARAM',
  'M_NOT_FOUND',
  'M_BAD_JSON',
  'M_NOT_JSON',
  'M_TOO_LARGE',
]);

/**
 * Test-only: with `1`, this process kills itself with SIGKILL at the durable point a migration's `name` asks for
 * (`kill-at-<point>`), on the job's first run only (the run that goes on after the restart passes it).
 */
const KILL_AT_NAMED_POINT = process.env['POLYHOME_TEST_MIGRATION_KILL'] === '1';

/**
 * Migration of an account to another provider (libs/home's MigrationJobs, wired to the database, the sealed keys,
 * the queue and the audit log), and the receiving side: /polyhome/custody/1.0.0, where a provider migrating an
 * account here hands its root key over with the document that revokes it.
 */
@Injectable()
export class MigrationService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly jobs: MigrationJobs;
  private handler: CustodyHandler | undefined;

  constructor(
    private readonly accounts: AccountsService,
    private readonly audit: AuditService,
    private readonly p2p: P2pService,
    queue: QueueService,
    @InjectRepository('admin') private readonly admin: SqlAdminStore,
    @InjectRepository('accounts') private readonly rows: AccountRepository,
    private readonly store: SqlReplicaStore,
    @Inject(SERVER_SECRETS) private readonly secrets: ServerSecrets,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
  ) {
    this.jobs = new MigrationJobs({
      jobs: admin,
      queue: queue.backend.queue<AdminJobData>(ADMIN_JOBS_QUEUE),
      localPeer: p2p.peerId,
      document: (account) => store.document(account),
      peerOf: (address) => {
        try {
          return peerIdOfMultiaddr(address);
        } catch {
          throw new MigrationRefusal('invalid', 'to must be a multiaddr ending in /p2p/<PeerId>.');
        }
      },
      enroll: (params, token) => this.enroll(params, token),
      resync: (account, peerId, options) => p2p.home.resync(account, peerId, options),
      roomsBehind: (account, peerId) => p2p.home.roomsBehind(account, peerId),
      freeze: async (account) => {
        await admin.setAccountStatus(account, 'migrating');
      },
      thaw: async (account) => {
        if ((await rows.findByServerName(account))?.status === 'migrating')
          await admin.setAccountStatus(account, 'active');
      },
      signDeparture: (account) => this.signDeparture(account),
      handOver: (params, document) => this.handOver(params, document),
      finish: (params, document) => this.finish(params, document),
      atPoint: (point, params, resumed) => {
        this.logger.info({ userId: params.user_id, to: params.to_peer, point }, 'migration reached a durable point');
        if (KILL_AT_NAMED_POINT && !resumed && params.to_name === `kill-at-${point}`)
          process.kill(process.pid, 'SIGKILL');
      },
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    const handler = new CustodyHandler(this.p2p.host, {
      receive: (request, from) => this.receive(request, from),
      logger: this.logger.child({ component: 'p2p' }),
    });
    await handler.start();
    this.handler = handler;
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.handler?.stop();
    this.handler = undefined;
  }

  /**
   * Starts a migration of a hosted account to the server at `to`; its job id. Only an account whose key this
   * server holds can be moved by it (a user holding their own key adds and revokes homes themselves).
   */
  async start(input: {
    userId: string;
    to: string;
    token?: string | undefined;
    name?: string | undefined;
    reason: string;
    startedBy: 'user' | 'admin';
  }): Promise<string> {
    const row = await this.accounts.rowByUserId(input.userId);
    if (row.custody !== 'hosted' || row.sealedRootKey === null) {
      throw new ApiError(
        'M_FORBIDDEN',
        `${row.userId} holds its own key: the user moves it with \`polyhome home add\` and \`polyhome home revoke\`.`,
      );
    }
    if (row.status !== 'active') {
      throw new ApiError('M_INVALID_PARAM', `${row.userId} is ${row.status} here: only an active account can move.`);
    }
    let id: string;
    try {
      id = await this.jobs.start({
        user_id: row.userId,
        account: row.serverName,
        to: input.to,
        to_name: input.name ?? 'server',
        token: input.token,
        reason: input.reason,
        started_by: input.startedBy,
      });
    } catch (error) {
      if (error instanceof MigrationRefusal) {
        throw new ApiError(error.kind === 'not_found' ? 'M_NOT_FOUND' : 'M_INVALID_PARAM', error.message);
      }
      throw error;
    }
    await this.audit.record({
      action: 'account.migrate',
      target: row.userId,
      reason: input.reason,
      detail: { job_id: id, to: input.to, started_by: input.startedBy },
    });
    return id;
  }

  private async enroll(params: MigrationParams, token: string | undefined): Promise<void> {
    try {
      await this.accounts.addHomeByAddress(params.user_id, {
        multiaddr: params.to,
        role: 'server',
        name: params.to_name,
        token,
      });
    } catch (error) {
      if (error instanceof ApiError) throw new MigrationRefusal('refused', error.message);
      throw error;
    }
  }

  private async signDeparture(account: string): Promise<AccountDocument> {
    const row = await this.accounts.rowByUserId((await this.userIdOf(account)) ?? '');
    const rootKey = this.accounts.rootKeyOf(row);
    try {
      return await this.p2p.home.departureDocument(account, rootKey);
    } finally {
      rootKey.destroy();
    }
  }

  private async handOver(params: MigrationParams, document: AccountDocument): Promise<number> {
    // rootKeyOf throws when the key is no longer held here (it would be retried, and say so each time).
    const rootKey = this.accounts.rootKeyOf(await this.accounts.rowByUserId(params.user_id));
    const seed = rootKey.revealSeed();
    rootKey.destroy();
    try {
      const answer = await handOverCustody(this.p2p.host, params.to, {
        document,
        root_key: encodeBase64(seed),
      });
      return answer.seq;
    } catch (error) {
      if (error instanceof CustodyRefusedError && FINAL_REFUSALS.has(error.errcode)) {
        throw new MigrationRefusal(
          'refused',
          `The new server home refused the key: ${error.error} (${error.errcode}).`,
        );
      }
      throw error;
    } finally {
      seed.fill(0);
    }
  }

  /** Puts the departure in force here, erases the key, ends the tokens and stops taking part in the sync. */
  private async finish(params: MigrationParams, document: AccountDocument): Promise<void> {
    await this.store.offerDocument(params.account, document, params.to_peer);
    await this.rows.releaseCustody(params.account);
    await this.admin.setAccountStatus(params.account, 'migrated');
    const tokens = await this.admin.revokeAccessTokens(params.account);
    // Sent on to the sessions still open, unless a restart already stopped this server's part in the sync.
    if (this.p2p.home.hosted().includes(params.account)) await this.p2p.home.documentChanged(params.account);
    await this.p2p.home.unhostAccount(params.account);
    await this.audit.record({
      action: 'account.migrated',
      target: params.user_id,
      reason: params.reason,
      detail: { to: params.to_peer, seq: document.seq, tokens_revoked: tokens },
    });
    this.logger.info({ userId: params.user_id, to: params.to_peer, seq: document.seq }, 'account migrated away');
  }

  private async userIdOf(account: string): Promise<string | undefined> {
    return (await this.rows.findByServerName(account))?.userId;
  }

  /**
   * The receiving side: a home of an account held here hands over the root key with the document revoking it.
   * Checked: the document (root signature), that this server holds the account and is a server home in it, that
   * the sender is a home of it in the document held here and is the one the new document revokes, and that the
   * key is the account's root key. Then the key is sealed and stored, and the document put in force. A repeat
   * of a handover already taken is answered with the seq in force (nothing changes).
   */
  private async receive(request: Record<string, unknown>, from: string): Promise<CustodyAnswer | CustodyErrorAnswer> {
    const unknown = Object.keys(request).filter((k) => k !== 'document' && k !== 'root_key');
    if (unknown.length > 0) return refuse('M_BAD_JSON', `Unknown field ${unknown[0]!.slice(0, 40)}.`);
    if (typeof request['root_key'] !== 'string' || request['root_key'].length > 64) {
      return refuse('M_BAD_JSON', 'root_key must be the unpadded base64 of a 32-byte seed.');
    }
    let document: AccountDocument;
    try {
      document = verifyAccountDocument(request['document']);
    } catch (error) {
      return refuse('M_INVALID_PARAM', `The document is not valid: ${(error as Error).message}`);
    }
    const account = parseUserId(document.user_id).serverName;
    const row = await this.rows.findByServerName(account);
    const held = row === undefined ? undefined : await this.store.document(account);
    if (row === undefined || held === undefined)
      return refuse('M_NOT_FOUND', `${document.user_id} is not hosted here.`);
    const self = this.p2p.peerId;
    if (document.homes.find((h) => h.peer_id === self)?.role !== 'server') {
      return refuse('M_FORBIDDEN', `The document does not name this server (${self}) as a server home.`);
    }
    if (homeStatus(document, from).kind !== 'revoked') {
      return refuse('M_FORBIDDEN', 'Only a home leaving the account hands its key over: the document must revoke it.');
    }
    let rootKey: SecretKey;
    try {
      rootKey = SecretKey.fromSeed(decodeBase64(request['root_key']));
    } catch {
      return refuse('M_BAD_JSON', 'root_key must be the unpadded base64 of a 32-byte seed.');
    }
    try {
      if (serverNameFromPublicKey(rootKey.publicKey) !== account) {
        return refuse('M_FORBIDDEN', `root_key is not the root key of ${document.user_id}.`);
      }
      if (held.seq >= document.seq) {
        // A repeat (the answer was lost): taken already when the document in force here revokes the sender and
        // this server holds the key, even if the account has moved on since. Otherwise it is stale.
        const taken =
          homeStatus(held, from).kind === 'revoked' && row.custody === 'hosted' && row.sealedRootKey !== null;
        if (!taken) return refuse('M_FORBIDDEN', `A newer document (seq ${held.seq}) is in force here.`);
        return { seq: held.seq };
      }
      if (homeStatus(held, from).kind !== 'home') {
        return refuse('M_FORBIDDEN', `${from} is not a home of ${document.user_id} in the document held here.`);
      }
      // The key first: a crash between the two leaves the key with the older document, and the leaving home sends
      // the same request again until it is answered.
      if (row.custody !== 'hosted' || row.sealedRootKey === null) {
        await this.rows.takeCustody(account, sealRootKey(rootKey, this.secrets.sealingKey));
      }
    } finally {
      rootKey.destroy();
    }
    const inForce = await this.store.offerDocument(account, document, from);
    await this.p2p.home.documentChanged(account);
    // The devices logged in on the home that left end with it (their clients log in here), on every home.
    const state = await this.store.state(account);
    const ended = devicesOfHome(state, from);
    if (ended.length > 0) await this.accounts.applyLocal(account, deviceDeletions(state, ended));
    await this.audit.record({
      action: 'account.migrated_in',
      target: document.user_id,
      reason: `The account's key was handed over by ${from}, which left it.`,
      detail: { from, seq: document.seq, devices_ended: ended },
    });
    this.logger.info(
      { userId: document.user_id, from, seq: document.seq },
      'account key taken over from a leaving home',
    );
    return { seq: inForce.seq };
  }
}

function refuse(errcode: string, error: string): CustodyErrorAnswer {
  return { errcode, error };
}
