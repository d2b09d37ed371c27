import { Inject, Injectable } from '@nestjs/common';
import {
  IdentityError,
  SecretKey,
  createAccountDocument,
  generateKeyPair,
  isCrossSigningMasterKey,
  parseUserId,
  revokedCutoff,
  sealRootKey,
  setCrossSigningMaster,
  unsealRootKey,
  verifyAccountDocument,
  type AccountDocument,
  type Home,
  type HomeRole,
} from '@polyhome/identity';
import {
  AccountNotHeldError,
  HomeAddressError,
  InvalidPairingCodeError,
  LocalChangeRefusedError,
  normalizePairingCode,
  peerIdOfMultiaddr,
  SelfRevocationError,
  type LocalChange,
} from '@polyhome/home';
import {
  SqlReplicaStore,
  type AccountCustody,
  type AccountRecord,
  type AccountRepository,
  type DocumentEquivocation,
  type HomeNodeRepository,
  type SqlAdminStore,
  type StorageTransaction,
  type Transactions,
} from '@polyhome/storage';
import type { Op } from '@polyhome/sync';
import { ApiError, RateLimitedError } from '../common/api-error.js';
import { decodeCursor, pageOf, pageOfRows, type Page, type PageQueryDto } from '../common/pagination.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { P2pService } from '../p2p/p2p.service.js';
import { SERVER_SECRETS, type ServerSecrets } from '../secrets/secrets.js';
import { InjectRepository } from '../storage/storage.module.js';
import {
  checkPasswordGuess,
  DEFAULT_GUESS_POLICY,
  GuessBackoffError,
  hashPassword,
  PasswordGuessLimiter,
  replicatedVerifier,
} from '@polyhome/home';

/** The longest user ID a guess is counted under (login takes at most 255 characters). */
const GUESS_KEY_CHARS = 255;

/** An account as the admin API lists it. */
export interface AccountSummary {
  user_id: string;
  server_name: string;
  custody: AccountCustody;
  status: string;
  doc_seq: number;
  created_at: string;
}

/** A home of an account with its sync status as seen from this server. */
export interface HomeStatusView extends Home {
  /** This server itself. */
  self: boolean;
  connected: boolean;
  last_connected_at: string | null;
  last_seen_at: string | null;
  /** What the home is known to hold: its acknowledgements, its live session's vector, and its own ops. */
  acked: Record<string, number>;
  /** Ops this server holds that the home has not acknowledged. */
  pending_ops: number;
}

/** The whole view of one account. */
export interface AccountDetail extends AccountSummary {
  document: AccountDocument;
  homes: HomeStatusView[];
  revoked: Record<string, number>;
  equivocators: Array<{ origin: string; ops: number }>;
  /** The last root-document equivocation seen: two documents of `seq`, signed by the root key. */
  document_equivocation: DocumentEquivocation | null;
  /** Its devices as replicated (on every home), each naming the home it is logged in on. */
  devices: Array<Record<string, unknown>>;
  /** Its rooms with the membership the account's replicated state holds. */
  rooms: Array<Record<string, unknown>>;
  /** When it last did something here. */
  last_activity: { last_op_at: string | null; last_login_at: string | null; access_tokens: number };
}

/** A local change to an account's replicated state. */
export type { LocalChange };

/**
 * Accounts this server hosts: hosted ones (the server holds the root key, sealed) and co-hosted ones (the
 * user holds it). Every state change made here is a signed op of this home, stored and pushed to the others.
 */
@Injectable()
export class AccountsService {
  /** Wrong password guesses per user ID, shared by every password route (login, UIA, custody). */
  readonly #guesses: PasswordGuessLimiter;

  constructor(
    @InjectRepository('accounts') private readonly accounts: AccountRepository,
    @InjectRepository('homeNodes') private readonly homeNodes: HomeNodeRepository,
    @InjectRepository('transactions') private readonly transactions: Transactions,
    @InjectRepository('admin') private readonly admin: SqlAdminStore,
    private readonly store: SqlReplicaStore,
    private readonly p2p: P2pService,
    @Inject(SERVER_SECRETS) private readonly secrets: ServerSecrets,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.#guesses = new PasswordGuessLimiter({ ...DEFAULT_GUESS_POLICY, baseDelayMs: config.loginBackoffMs });
  }

  /** This server as a home entry of an account document. */
  selfHome(): Home {
    return { peer_id: this.p2p.peerId, role: 'server', name: this.config.homeName, addrs: this.announceAddrs() };
  }

  /**
   * Creates a hosted account: a new root key, sealed at rest, and a document naming this server. Each key makes
   * a new user ID, so a localpart this server hosts already is refused (M_USER_IN_USE, naming the account)
   * unless `allowDuplicate`: creating `alice` twice is far more often a repeated command than a wish for a
   * second `@alice`.
   */
  async createHosted(localpart: string, password: string | undefined, allowDuplicate = false): Promise<AccountSummary> {
    if (!allowDuplicate) {
      const existing = await this.accounts.withLocalpart(localpart);
      if (existing.length > 0) {
        throw new ApiError(
          'M_USER_IN_USE',
          `This server hosts ${localpart} already: ${existing.map((a) => a.userId).join(', ')}. Use that account, or send "allow_duplicate_localpart": true to make a second @${localpart} with another key.`,
        );
      }
    }
    const { secretKey } = generateKeyPair();
    let document: AccountDocument;
    try {
      document = createAccountDocument({ localpart, rootKey: secretKey, home: this.selfHome() });
    } catch (err) {
      throw invalid(err);
    }
    const serverName = await this.store.hostAccount(document, {
      custody: 'hosted',
      sealedRootKey: Buffer.from(sealRootKey(secretKey, this.secrets.sealingKey), 'utf8'),
    });
    const verifier = password === undefined ? undefined : await hashPassword(password);
    if (verifier !== undefined) await this.accounts.setPasswordHash(serverName, verifier);
    await this.p2p.home.hostAccount(serverName);
    // The verifier (never the password) replicates, so every home of the account checks a password login.
    if (verifier !== undefined) {
      await this.p2p.home.applyLocal(serverName, [{ op: 'password.set', key: 'verifier', body: { verifier } }]);
    }
    return this.summary(await this.row(serverName));
  }

  /**
   * Starts hosting an account whose document (verified here) names this server as a home: co-hosting for a
   * user who holds the key. Returns the server name. Throws ApiError when it does not name this server.
   * `alongside` runs in the transaction that stores the account (enrollment consumes its token there), so
   * either both commit or neither does.
   */
  async hostCoHosted(
    document: unknown,
    from: string | null,
    alongside?: (tx: StorageTransaction) => Promise<void>,
  ): Promise<string> {
    let verified: AccountDocument;
    try {
      verified = verifyAccountDocument(document);
    } catch (err) {
      throw invalid(err);
    }
    const self = verified.homes.find((h) => h.peer_id === this.p2p.peerId);
    if (self === undefined) {
      throw new ApiError(
        'M_FORBIDDEN',
        `The account document does not name this server (${this.p2p.peerId}) as a home.`,
      );
    }
    const serverName = parseUserId(verified.user_id).serverName;
    const held = await this.store.document(serverName);
    if (held !== undefined) return this.joinSibling(held, verified, from, alongside);
    if (alongside === undefined) {
      await this.store.hostAccount(verified, { custody: 'self', receivedFrom: from });
    } else {
      await this.transactions.run(async (tx) => {
        await alongside(tx);
        await this.store.hostAccount(verified, { custody: 'self', receivedFrom: from, transaction: tx });
      });
    }
    await this.p2p.home.hostAccount(serverName);
    // Fetch the account's state from its other homes now rather than when they next call.
    this.p2p.home.connectHomesLater(serverName);
    return serverName;
  }

  /**
   * The account is already in this database. With one server on it, that is a repeated enrollment
   * (`M_USER_IN_USE`). With several instances sharing the database (scale-out), another instance may have
   * stored it and the document now adds this one as a home of its own: this process puts the newer document
   * in force and starts taking part in the account's sync. Either way, when the document in force names this
   * server, its libp2p node hosts the account afterwards (a sibling's rows alone do not make it do so).
   */
  private async joinSibling(
    held: AccountDocument,
    offered: AccountDocument,
    from: string | null,
    alongside: ((tx: StorageTransaction) => Promise<void>) | undefined,
  ): Promise<string> {
    const serverName = parseUserId(offered.user_id).serverName;
    const namesSelf = (d: AccountDocument): boolean => d.homes.some((h) => h.peer_id === this.p2p.peerId);
    if (namesSelf(held)) {
      await this.p2p.home.hostAccount(serverName);
      throw new ApiError('M_USER_IN_USE', `${offered.user_id} is already hosted here.`);
    }
    if (offered.seq <= held.seq) {
      throw new ApiError(
        'M_FORBIDDEN',
        `The account's document in force here (seq ${held.seq}) does not name this server (${this.p2p.peerId}).`,
      );
    }
    if (alongside !== undefined) await this.transactions.run(alongside);
    const inForce = await this.store.offerDocument(serverName, offered, from ?? this.p2p.peerId);
    if (!namesSelf(inForce)) {
      throw new ApiError('M_FORBIDDEN', `The account's document in force here does not name this server.`);
    }
    await this.p2p.home.hostAccount(serverName);
    await this.p2p.home.documentChanged(serverName);
    return serverName;
  }

  /**
   * Lists hosted accounts by user ID, one page after the cursor, optionally those whose user ID contains
   * `search` (case-insensitive).
   */
  async list(query: PageQueryDto & { search?: string | undefined }): Promise<Page<AccountSummary>> {
    const rows = await this.admin.searchAccounts({
      search: query.search,
      after: query.from === undefined ? undefined : decodeCursor(query.from),
      limit: query.limit + 1,
    });
    return pageOfRows(
      rows,
      query.limit,
      (r) => this.summary(r),
      (a) => a.user_id,
    );
  }

  /** The account, its document, and each home's sync status. */
  async detail(userId: string): Promise<AccountDetail> {
    const row = await this.rowByUserId(userId);
    const document = await this.document(row.serverName);
    const [vv, delivery, equivocators, onThisDatabase, state, activity] = await Promise.all([
      this.store.versionVector(row.serverName),
      this.store.deliveryState(row.serverName),
      this.store.equivocators(row.serverName),
      this.homeNodes.peerIds(),
      this.store.state(row.serverName),
      this.admin.accountActivity(row.serverName),
    ]);
    // This server and the other instances on its database share the op log: they hold everything it holds.
    const siblings = new Set(onThisDatabase);
    const byPeer = new Map(delivery.map((d) => [d.peerId, d]));
    const live = this.p2p.home.liveVectors(row.serverName);
    const homes = document.homes.map((home): HomeStatusView => {
      const d = byPeer.get(home.peer_id);
      // What the home holds, as best known: its recorded acks, what its open session last reported, and
      // its own ops (a home never lacks what it made itself).
      const acked: Record<string, number> = siblings.has(home.peer_id) ? { ...vv } : { ...(d?.ackedVv ?? {}) };
      for (const [origin, seq] of Object.entries(live.get(home.peer_id) ?? {}))
        acked[origin] = Math.max(acked[origin] ?? 0, seq);
      if (vv[home.peer_id] !== undefined) acked[home.peer_id] = Math.max(acked[home.peer_id] ?? 0, vv[home.peer_id]!);
      const pending = Object.entries(vv).reduce((n, [origin, seq]) => n + Math.max(0, seq - (acked[origin] ?? 0)), 0);
      const self = home.peer_id === this.p2p.peerId;
      return {
        ...home,
        self,
        connected: !self && this.p2p.isConnected(home.peer_id),
        last_connected_at: d?.lastConnectedAt?.toISOString() ?? null,
        last_seen_at: d?.lastSeenAt?.toISOString() ?? null,
        acked,
        pending_ops: self ? 0 : pending,
      };
    });
    // The cutoffs only (the document carries any pinned digest): the admin view keeps its shape.
    const revoked = Object.fromEntries(Object.entries(document.revoked).map(([p, e]) => [p, revokedCutoff(e)]));
    return {
      ...this.summary(row),
      document,
      homes,
      revoked,
      equivocators,
      document_equivocation: row.documentEquivocation ?? null,
      devices: devicesOf(state),
      rooms: membershipsOf(state),
      last_activity: {
        last_op_at: activity.lastOpAt?.toISOString() ?? null,
        last_login_at: activity.lastLoginAt?.toISOString() ?? null,
        access_tokens: activity.accessTokens,
      },
    };
  }

  /** The replicated state of the account: devices, memberships, cross-signing keys. */
  async state(userId: string): Promise<Awaited<ReturnType<SqlReplicaStore['state']>>> {
    const row = await this.rowByUserId(userId);
    return this.store.state(row.serverName);
  }

  /** The account's devices as replicated (device id, keys, display name, hosting home), by device id, paged. */
  async devices(userId: string, query: PageQueryDto): Promise<Page<Record<string, unknown>>> {
    const state = await this.state(userId);
    return pageOf(devicesOf(state), (d) => String(d['device_id']), query);
  }

  /** The account's room memberships as replicated, by room id, paged. */
  async memberships(userId: string, query: PageQueryDto): Promise<Page<Record<string, unknown>>> {
    const state = await this.state(userId);
    return pageOf(membershipsOf(state), (m) => String(m['room_id']), query);
  }

  /**
   * Adds a home given by its multiaddr to a hosted account: signs the new document, then (for another
   * server) enrolls it with the token, so it starts hosting and syncing at once.
   */
  async addHomeByAddress(
    userId: string,
    input: {
      multiaddr: string;
      role: HomeRole;
      name: string;
      token?: string | undefined;
      pairing_code?: string | undefined;
    },
  ): Promise<AccountDocument> {
    let peerId: string;
    try {
      peerId = peerIdOfMultiaddr(input.multiaddr);
    } catch (err) {
      if (!(err instanceof HomeAddressError)) throw err;
      throw new ApiError(
        'M_INVALID_PARAM',
        err.reason === 'no_peer_id' ? 'multiaddr must end in /p2p/<PeerId>.' : 'multiaddr is not a valid multiaddr.',
      );
    }
    if (input.pairing_code !== undefined) {
      if (input.role !== 'client') throw new ApiError('M_INVALID_PARAM', 'pairing_code is for a client home.');
      if (normalizePairingCode(input.pairing_code) === undefined) {
        throw new ApiError('M_INVALID_PARAM', new InvalidPairingCodeError().message);
      }
    }
    const home = {
      peerId,
      address: input.multiaddr,
      role: input.role,
      name: input.name,
      pairingCode: input.pairing_code,
    };
    const enroller = this.enroller;
    // The remote server enrolls with the signed next document before it is put in force here: a refused
    // enrollment leaves the account's document as it was (the refused document was stored nowhere).
    const enroll =
      enroller === undefined || input.role !== 'server'
        ? undefined
        : (next: AccountDocument) => enroller(input.multiaddr, next, input.token);
    return this.withRootKey(userId, (account, rootKey) => this.p2p.home.addHome(account, home, rootKey, enroll));
  }

  /** Who enrolls a remote server after its home was added (set by the enrollment module). */
  enroller: ((multiaddr: string, document: AccountDocument, token: string | undefined) => Promise<void>) | undefined;

  /**
   * Stops hosting an account. Its ops, state and (for a hosted account) sealed key go with it, by cascade
   * from the account row; nothing of another account is touched.
   */
  async remove(userId: string): Promise<void> {
    const row = await this.rowByUserId(userId);
    await this.p2p.home.unhostAccount(row.serverName);
    await this.accounts.remove(row.serverName);
  }

  /** Signs a new document adding a home (hosted accounts only). Returns the new document. */
  async addHome(userId: string, home: Home): Promise<AccountDocument> {
    const entry = { peerId: home.peer_id, role: home.role, name: home.name };
    return this.withRootKey(userId, (account, rootKey) =>
      this.p2p.home.addHome(
        account,
        home.addrs[0] === undefined ? entry : { ...entry, address: home.addrs[0] },
        rootKey,
      ),
    );
  }

  /**
   * Signs a new document revoking a home, with the last op seq this server accepted from it as cutoff and the
   * digest of its log held here pinned (so replicas holding other versions of it converge on this one).
   */
  async removeHome(userId: string, peerId: string): Promise<AccountDocument> {
    return this.withRootKey(userId, (account, rootKey) => this.p2p.home.removeHome(account, peerId, rootKey));
  }

  /**
   * Names `master` as the account's cross-signing master key in its document, when this server holds the root
   * key (hosted accounts) and the document names another or none. An account holding its own key is left as
   * it is: its ops are then checked against the document its root signed. A text that is no Ed25519 key is
   * not named (the document would be invalid); it binds nothing and is stored as before.
   */
  async bindCrossSigningMaster(serverName: string, master: string): Promise<void> {
    // A key that cannot be an Ed25519 key signs nothing a client would trust; it is stored unbound.
    if (!isCrossSigningMasterKey(master)) return;
    const row = await this.row(serverName);
    if (row.custody !== 'hosted' || row.sealedRootKey === null) return;
    if ((await this.document(serverName)).cross_signing?.master === master) return;
    await this.withRootKey(row.userId, (account, rootKey) =>
      this.p2p.home.changeDocument(account, (document) => setCrossSigningMaster(document, master, rootKey)),
    );
  }

  /**
   * Makes, stores and pushes ops of this home for an account (the Matrix API's changes come through here).
   * Batches of one account are signed one after another (`LocalOpWriter`), so no two share a seq.
   */
  async applyLocal(serverName: string, changes: LocalChange[]): Promise<Op[]> {
    try {
      return await this.p2p.home.applyLocal(serverName, changes);
    } catch (err) {
      if (err instanceof LocalChangeRefusedError) throw new ApiError('M_INVALID_PARAM', err.message);
      throw err;
    }
  }

  /**
   * Checks a hosted account's password. A user ID not hosted here (or without a password) is checked against a
   * dummy hash, as slowly; every user ID, hosted or not, has the same limit on wrong guesses. Throws ApiError
   * M_FORBIDDEN (wrong), RateLimitedError (the user ID must wait; nothing was checked).
   */
  async checkPassword(userId: string, password: string): Promise<AccountRecord> {
    const row = await this.rowByUserId(userId).catch(() => undefined);
    // The hash set here, else the verifier another home replicated (an account co-hosted here).
    const verifier =
      row === undefined ? undefined : (row.passwordHash ?? replicatedVerifier(await this.store.state(row.serverName)));
    let right: boolean;
    try {
      right = await checkPasswordGuess(this.#guesses, userId.slice(0, GUESS_KEY_CHARS), password, verifier);
    } catch (err) {
      if (err instanceof GuessBackoffError) throw new RateLimitedError(err.retryAfterMs, err.message);
      throw err;
    }
    if (row === undefined || !right) throw new ApiError('M_FORBIDDEN', 'Invalid user ID or password.');
    return row;
  }

  /** The row of an account by user ID. Throws ApiError M_INVALID_PARAM (bad ID) or M_NOT_FOUND. */
  async rowByUserId(userId: string): Promise<AccountRecord> {
    let serverName: string;
    try {
      serverName = parseUserId(userId).serverName;
    } catch (err) {
      throw invalid(err);
    }
    const row = await this.accounts.findByServerName(serverName);
    if (row === undefined || row.userId !== userId) throw new ApiError('M_NOT_FOUND', `${userId} is not hosted here.`);
    return row;
  }

  /** The unsealed root key of a hosted account, for signing documents or handing over custody. */
  rootKeyOf(row: AccountRecord): SecretKey {
    if (row.custody !== 'hosted' || row.sealedRootKey === null) {
      throw new ApiError('M_FORBIDDEN', `${row.userId} holds its own key; this server cannot sign for it.`);
    }
    return unsealRootKey(row.sealedRootKey.toString('utf8'), row.serverName, this.secrets.sealingKey);
  }

  /**
   * Runs a document change of a hosted account with its unsealed root key, in Matrix terms: identity's
   * refusals are M_INVALID_PARAM, revoking this server is M_FORBIDDEN, an account without document M_NOT_FOUND.
   */
  private async withRootKey(
    userId: string,
    change: (account: string, rootKey: SecretKey) => Promise<AccountDocument>,
  ): Promise<AccountDocument> {
    const row = await this.rowByUserId(userId);
    try {
      return await change(row.serverName, this.rootKeyOf(row));
    } catch (err) {
      if (err instanceof SelfRevocationError) {
        throw new ApiError('M_FORBIDDEN', 'This server cannot revoke itself; delete the account to stop hosting it.');
      }
      if (err instanceof AccountNotHeldError) throw new ApiError('M_NOT_FOUND', 'The account has no document.');
      throw invalid(err);
    }
  }

  private async document(serverName: string): Promise<AccountDocument> {
    const document = await this.store.document(serverName);
    if (document === undefined) throw new ApiError('M_NOT_FOUND', 'The account has no document.');
    return document;
  }

  private async row(serverName: string): Promise<AccountRecord> {
    const row = await this.accounts.findByServerName(serverName);
    if (row === undefined) throw new Error(`account ${serverName} vanished after it was stored`);
    return row;
  }

  /** An account row as the admin API lists it. */
  summary(row: AccountRecord): AccountSummary {
    return {
      user_id: row.userId,
      server_name: row.serverName,
      custody: row.custody,
      status: row.status,
      doc_seq: Number(row.docSeq),
      created_at: row.createdAt.toISOString(),
    };
  }

  // Addresses worth putting in a document: not the unspecified ones, and at most the document's limit.
  private announceAddrs(): string[] {
    return this.p2p
      .addrs()
      .filter((a) => !a.includes('/0.0.0.0/') && !a.includes('/::/'))
      .slice(0, 8);
  }
}

/** The role names a home may have. */
export const HOME_ROLES: readonly HomeRole[] = ['server', 'client'];

/** The devices of a replicated state as a list, by device id. */
function devicesOf(state: { devices: Record<string, Record<string, unknown>> }): Array<Record<string, unknown>> {
  return Object.entries(state.devices)
    .map(([device_id, body]) => ({ ...body, device_id }))
    .sort((a, b) => (a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : 0));
}

/** The memberships of a replicated state as a list, by room id. */
function membershipsOf(state: {
  memberships: Record<string, Record<string, unknown>>;
}): Array<Record<string, unknown>> {
  return Object.entries(state.memberships)
    .map(([room_id, body]) => ({ ...body, room_id }))
    .sort((a, b) => (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : 0));
}

function invalid(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof IdentityError) return new ApiError('M_INVALID_PARAM', err.message);
  throw err;
}
