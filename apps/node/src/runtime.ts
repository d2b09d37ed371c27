// `polyhome start`: the running client-side home. It holds the data directory's database, runs libp2p with
// the sync service and discovery, serves the Matrix client API and the control API on 127.0.0.1, takes in
// the account of a `--join` node when a home of it first talks to this node, and announces its accounts in
// the DHT. Progress of long work (first database creation, catching up) goes to `onLine`.
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import { homeStatus, type AccountDocument } from '@polyhome/identity';
import {
  createDiscovery,
  createPolyhomeHost,
  createSyncService,
  type Discovery,
  type PolyhomeHost,
  type SyncService,
} from '@polyhome/p2p';
import { AccountEntity } from '@polyhome/storage';
import type { Op } from '@polyhome/sync';
import {
  accountStatuses,
  accounts,
  addHomeByAddress,
  changedKeys,
  exportAccount,
  listHomes,
  listState,
  loginToken,
  removeDevice,
  removeHomeByPeerId,
  setMembership,
  type StatusResult,
} from './commands.js';
import { homeContext, type HomeContext, type LiveHome } from './context.js';
import { startControlServer, type ControlHandler, type ControlServer } from './control.js';
import { dataDirPaths, openDataDir, readKey } from './data-dir.js';
import { CliError } from './errors.js';
import { lineLogger } from './logger.js';
import { startMatrixApi, type MatrixApi } from './matrix.js';

/** How often the node re-dials the homes of its accounts (a dropped connection comes back within this). */
const RECONNECT_INTERVAL_MS = 30_000;
/** How often the node announces its accounts in the DHT (provider records and documents expire). */
const ANNOUNCE_INTERVAL_MS = 10 * 60_000;
/** First announcement after start: time for the bootstrap connections to settle. */
const FIRST_ANNOUNCE_DELAY_MS = 1_000;
/** Catch-up progress is printed at most this often. */
const PROGRESS_INTERVAL_MS = 1_000;

/** Options of start. */
export interface StartOptions {
  /** libp2p listen multiaddr (default /ip4/127.0.0.1/tcp/0: nothing reachable from outside unless asked). */
  p2p: string;
  bootstrap: string[];
  /** Matrix client API port on 127.0.0.1 (0: any free port). */
  port: number;
  /** Progress and events, one line each. */
  onLine?: (line: string) => void;
}

/** A running home. */
export interface RunningHome {
  peerId: string;
  userIds(): string[];
  /** The libp2p listen addresses with /p2p/<PeerId>. */
  addrs: string[];
  /** The Matrix client API, `http://127.0.0.1:<port>`. */
  matrixUrl: string;
  /** Stops serving, syncing, the libp2p node and the database (releasing the data directory's lock). */
  stop(): Promise<void>;
}

/** Starts the home on a data directory; a second start on the same directory is refused by its lock. */
export async function startHome(dir: string, options: StartOptions): Promise<RunningHome> {
  const say = options.onLine ?? (() => undefined);
  const logger = lineLogger(say);
  const paths = dataDirPaths(dir);
  const nodeKey = await readKey(paths.nodeKey, 'node key', paths.dir);
  const fresh = await stat(paths.db).then(
    () => false,
    () => true,
  );
  if (fresh) say('first start: creating the embedded database');
  const storage = await openDataDir(paths, (message) => say(message));
  const stack: Array<() => Promise<void>> = [async () => storage.close()];
  const unwind = async (): Promise<void> => {
    for (const close of stack.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    const host: PolyhomeHost = await createPolyhomeHost({
      nodeKey,
      listen: [options.p2p],
      bootstrap: options.bootstrap,
      logger,
    }).catch((err: unknown) => {
      throw new CliError(`Cannot listen on ${options.p2p}: ${(err as Error).message}. Check --p2p.`);
    });
    stack.push(async () => {
      await host.stop();
    });
    const sync = createSyncService(host, { logger });
    await sync.start();
    stack.push(() => sync.stop());
    const discovery = createDiscovery({
      peerId: host.peerId,
      dht: host.services.dht,
      peerStore: host.peerStore,
      getConnections: host.getConnections.bind(host),
      logger,
    });
    const node = new NodeRuntime(sync, discovery, host, say, (live) => homeContext(paths, nodeKey, storage, live));
    const ctx = node.ctx;
    await node.hostAll();
    stack.push(() => node.stop());

    const matrix: MatrixApi = await startMatrixApi(
      ctx,
      (l) => node.onChanged(l),
      options.port,
      (err) => say(`matrix: internal error: ${(err as Error).message ?? String(err)}`),
    );
    stack.push(() => matrix.close());
    const control: ControlServer = await startControlServer(paths, node.handlers(matrix.url));
    stack.push(() => control.close());
    node.begin();
    return {
      peerId: ctx.peerId,
      userIds: () => node.userIds(),
      addrs: host.getMultiaddrs().map((a) => a.toString()),
      matrixUrl: matrix.url,
      stop: unwind,
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** The live side of the node: sync events, adoption, announcements, catch-up progress. */
class NodeRuntime {
  readonly #changes = new EventEmitter();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #unsubscribe: Array<() => void> = [];
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #adopting = new Set<string>();
  #users = new Map<string, string>();
  #received = 0;
  #receivedSince = 0;
  #lastProgress = 0;
  #progressTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  /** The commands' context in this process: its live hooks are this runtime's. */
  readonly ctx: HomeContext;

  constructor(
    private readonly sync: SyncService,
    private readonly discovery: Discovery,
    private readonly host: PolyhomeHost,
    private readonly say: (line: string) => void,
    makeContext: (live: LiveHome) => HomeContext,
  ) {
    this.#changes.setMaxListeners(0);
    const live: LiveHome = {
      host,
      published: (serverName: string, ops: Op[]) => {
        this.sync.publish(serverName, ops);
        this.#emitChanged(serverName, changedKeys(ops));
      },
      documentChanged: async (serverName: string) => {
        await this.sync.documentChanged(serverName);
        this.#track(this.sync.connectHomes(serverName));
        this.#track(this.#announce(serverName));
      },
    };
    this.ctx = makeContext(live);
  }

  onChanged(listener: (serverName: string, keys: string[]) => void): void {
    this.#changes.on('changed', listener);
  }

  userIds(): string[] {
    return [...this.#users.values()].sort();
  }

  /** Hosts every account of the database on the sync service. */
  async hostAll(): Promise<void> {
    for (const row of await accounts(this.ctx)) await this.#host(row);
    this.#unsubscribe.push(
      this.sync.on('acked', ({ account, peerId, vv }) => this.#track(this.ctx.store.recordAck(account, peerId, vv))),
      this.sync.on('applied', ({ account, ops, changed }) => {
        this.#emitChanged(account, changed);
        this.#progress(ops.length);
      }),
      this.sync.on('document', ({ account, peerId, document }) => {
        this.say(`document seq ${document.seq} of ${document.user_id} from ${peerId}`);
        this.#track(this.#announce(account));
      }),
      this.sync.on('rejected', ({ account, peerId, code, detail }) => {
        if (code === 'NOT_A_HOME' && !this.#users.has(account)) {
          this.#track(this.#adopt(account, peerId));
          return;
        }
        if (code !== 'NOT_A_HOME') this.say(`refused from ${peerId}: ${code}: ${detail}`);
      }),
    );
  }

  /** Starts the periodic work: dialling the accounts' homes and announcing them in the DHT. */
  begin(): void {
    const connect = (): void => {
      for (const serverName of this.#users.keys()) this.#track(this.sync.connectHomes(serverName));
    };
    // The first round of dials also offers every home the document this node holds: a home that does not know
    // this node yet (it was restored from a backup) learns from it that it is one.
    for (const serverName of this.#users.keys()) this.#track(this.#offerDocument(serverName));
    this.#timers.push(setInterval(connect, RECONNECT_INTERVAL_MS));
    const announceAll = (): void => {
      for (const serverName of this.#users.keys()) this.#track(this.#announce(serverName));
    };
    this.#timers.push(setTimeout(announceAll, FIRST_ANNOUNCE_DELAY_MS), setInterval(announceAll, ANNOUNCE_INTERVAL_MS));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers.splice(0)) clearTimeout(timer);
    if (this.#progressTimer !== undefined) clearTimeout(this.#progressTimer);
    for (const off of this.#unsubscribe.splice(0)) off();
    // Acknowledgements being written must land before the database closes.
    await Promise.allSettled([...this.#inFlight]);
  }

  /** The control API's commands, run on this node's context. */
  handlers(matrixUrl: string): Record<string, ControlHandler> {
    const ctx = (): HomeContext => this.ctx;
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    return {
      status: async (): Promise<StatusResult> => ({
        data_dir: ctx().paths.dir,
        peer_id: ctx().peerId,
        running: process.pid,
        matrix_url: matrixUrl,
        listening: this.host.getMultiaddrs().map((a) => a.toString()),
        connected_peers: [...new Set(this.host.getConnections().map((c) => c.remotePeer.toString()))].sort(),
        accounts: await accountStatuses(ctx()),
      }),
      'home.list': () => listHomes(ctx()),
      'home.add': (a) =>
        addHomeByAddress(ctx(), str(a['target']) ?? '', {
          role: a['role'] === 'server' ? 'server' : 'client',
          token: str(a['token']),
          name: str(a['name']),
          user: str(a['user']),
        }),
      'home.remove': (a) => removeHomeByPeerId(ctx(), str(a['peer_id']) ?? '', str(a['user'])),
      'device.list': () => listState(ctx(), 'devices'),
      'device.remove': (a) => removeDevice(ctx(), str(a['device_id']) ?? '', str(a['user'])),
      'room.list': () => listState(ctx(), 'memberships'),
      'room.join': (a) => setMembership(ctx(), str(a['room_id']) ?? '', 'join', str(a['user'])),
      'room.leave': (a) => setMembership(ctx(), str(a['room_id']) ?? '', 'leave', str(a['user'])),
      'login-token': (a) => loginToken(ctx(), str(a['user'])),
      export: (a) => exportAccount(ctx(), str(a['passphrase']) ?? '', str(a['user'])),
    };
  }

  async #host(row: AccountEntity): Promise<void> {
    await this.sync.host(row.serverName, this.ctx.store);
    this.#users.set(row.serverName, row.userId);
  }

  /**
   * A home of an account this node does not hold opened a session: if the node holds no account yet (it was
   * made with `init --join`), it asks that home for the document, and takes the account in when the document
   * names this node as a home. A node that holds an account takes in no other this way, so nobody can make it
   * store accounts by naming its PeerId in a document.
   */
  async #adopt(account: string, peerId: string): Promise<void> {
    if (this.#users.size > 0 || this.#adopting.has(account) || this.#stopped) return;
    this.#adopting.add(account);
    try {
      let document: AccountDocument;
      try {
        document = await this.sync.fetchDocument(peerId, account);
      } catch (err) {
        this.say(`cannot fetch the document of ${account} from ${peerId}: ${(err as Error).message}`);
        return;
      }
      if (homeStatus(document, this.ctx.peerId).kind !== 'home' || this.#users.size > 0) return;
      await this.ctx.store.hostAccount(document, { custody: 'self', receivedFrom: peerId });
      const row = await this.ctx.storage.dataSource
        .getRepository(AccountEntity)
        .findOneByOrFail({ serverName: account });
      await this.#host(row);
      this.say(`joined ${document.user_id} (document seq ${document.seq}, from ${peerId})`);
      await this.sync.connectHomes(account);
      this.#track(this.#announce(account));
    } finally {
      this.#adopting.delete(account);
    }
  }

  /** Dials the account's homes, offers each the held document, and opens sessions with those that took it. */
  async #offerDocument(serverName: string): Promise<void> {
    const document = await this.ctx.store.document(serverName);
    if (document === undefined) return;
    await this.sync.connectHomes(serverName);
    let accepted = 0;
    for (const home of document.homes) {
      if (home.peer_id === this.ctx.peerId) continue;
      if (await this.sync.offerDocument(home.peer_id, document).catch(() => false)) accepted++;
    }
    if (accepted > 0) await this.sync.connectHomes(serverName);
  }

  /** Provides the account in the DHT and puts its document there; failures only delay it to the next round. */
  async #announce(serverName: string): Promise<void> {
    if (this.#stopped || this.host.getConnections().length === 0) return;
    const document = await this.ctx.store.document(serverName);
    if (document === undefined) return;
    await Promise.allSettled([this.discovery.provide(serverName), this.discovery.publishDocument(document)]);
  }

  #emitChanged(serverName: string, keys: string[]): void {
    if (keys.length > 0) this.#changes.emit('changed', serverName, keys);
  }

  // Catch-up progress: a line per second while ops arrive, and a summary when they stop.
  #progress(count: number): void {
    const now = Date.now();
    if (this.#received === 0) this.#receivedSince = now;
    this.#received += count;
    if (now - this.#lastProgress >= PROGRESS_INTERVAL_MS) {
      this.#lastProgress = now;
      this.say(`sync: received ${this.#received} ops`);
    }
    if (this.#progressTimer !== undefined) clearTimeout(this.#progressTimer);
    this.#progressTimer = setTimeout(() => {
      const seconds = (Date.now() - this.#receivedSince) / 1000;
      this.say(`sync: caught up, ${this.#received} ops received in ${seconds.toFixed(1)} s`);
      this.#received = 0;
    }, 2 * PROGRESS_INTERVAL_MS);
    this.#progressTimer.unref();
  }

  #track(work: Promise<unknown>): void {
    const tracked = work
      .catch((err: unknown) => {
        if (!this.#stopped) this.say(`background work failed: ${(err as Error).message ?? String(err)}`);
      })
      .finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }
}
