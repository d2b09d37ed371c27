// `polyhome start`: the running client-side home. It holds the data directory's database, runs libp2p with
// the sync service and discovery, serves the Matrix client API and the control API on 127.0.0.1, takes in
// the account of a `--join` node when a home of it first talks to this node, and announces its accounts in
// the DHT. Progress of long work (first database creation, catching up) goes to `onLine`.
import { stat } from 'node:fs/promises';
import { FilePairingCodeStore, Home, NOT_A_HOME, RefusalLog, serveClientApi } from '@polyhome/home';
import { isRelayedAddr, listenFailureReason } from '@polyhome/p2p';
import { createQueueBackend } from '@polyhome/queue';
import { createRepositories, openSeqGuardStore } from '@polyhome/storage';
import {
  accountStatuses,
  accounts,
  addHomeByAddress,
  advertiseAddrs,
  exportAccount,
  listHomes,
  listState,
  loginToken,
  removeDevice,
  removeHomeByPeerId,
  setMembership,
  type StatusResult,
} from './commands.js';
import { backupDataDir } from './backup.js';
import { homeContext, type HomeContext } from './context.js';
import { startControlServer, type ControlHandler, type ControlServer } from './control.js';
import { dataDirPaths, openDataDir, readKey } from './data-dir.js';
import { CliError } from './errors.js';
import { lineLogger } from './logger.js';
import { DEFAULT_MEDIA_MAX_BYTES } from '@polyhome/matrix';
import { nodeHomeAccounts, startMatrixApi, type MatrixApi } from './matrix.js';

/** How often the node re-dials the homes of its accounts (a dropped connection comes back within this). */
const RECONNECT_INTERVAL_MS = 30_000;
/** How often the node announces its accounts in the DHT (provider records and documents expire). */
const ANNOUNCE_INTERVAL_MS = 10 * 60_000;
/** First announcement after start: time for the bootstrap connections to settle. */
const FIRST_ANNOUNCE_DELAY_MS = 1_000;
/** A change of this node's relayed addresses goes into the account documents this long after the last one. */
const ADVERTISE_DELAY_MS = 2_000;
/** Relayed addresses put in this home's entry of an account document at most. */
const MAX_ADVERTISED_ADDRS = 8;
/** Catch-up progress is printed at most this often. */
const PROGRESS_INTERVAL_MS = 1_000;

/** Options of start. */
export interface StartOptions {
  /** libp2p listen multiaddr (default /ip4/127.0.0.1/tcp/0: nothing reachable from outside unless asked). */
  p2p: string;
  bootstrap: string[];
  /** Addresses announced instead of the listen addresses (default none: the listen addresses, AutoNAT's rules). */
  announce?: string[];
  /** Matrix client API port on 127.0.0.1 (0: any free port). */
  port: number;
  /** Serve the Matrix client API over libp2p for `polyhome proxy` (default true). */
  clientApiOverP2p?: boolean;
  /** Largest media upload in bytes (default `DEFAULT_MEDIA_MAX_BYTES`, 50 MiB). */
  mediaMaxBytes?: number;
  /**
   * Put the relayed addresses in this home's entry of the documents whose root key it holds (default false: each
   * change signs a new document; the DHT carries them in any case).
   */
  advertiseRelayed?: boolean;
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
    // Announcements run as jobs on the in-process queue; it closes before the Home stops.
    const queue = createQueueBackend({ onError: (err) => say(`queue: ${err.message}`) });
    const repositories = createRepositories(storage);
    const store = repositories.replica;
    const home = await Home.create(
      {
        nodeKey,
        store,
        queue,
        logger,
        seqGuard: await openSeqGuardStore(storage),
        rooms: repositories.rooms,
        receipts: repositories.receipts,
        oneTimeKeys: repositories.matrix,
        toDevice: repositories.toDevice,
        roomBlocks: repositories.roomBlocks,
      },
      {
        listen: [options.p2p],
        bootstrap: options.bootstrap,
        announceEveryMs: ANNOUNCE_INTERVAL_MS,
        announceAtStartMs: FIRST_ANNOUNCE_DELAY_MS,
        reconnectEveryMs: RECONNECT_INTERVAL_MS,
        offerDocumentsAtStart: true,
        adoptWhenEmpty: true,
        pairing: new FilePairingCodeStore(paths.pairing),
        // Behind NAT (AutoNAT confirms no public address), reserve slots on the account's server homes' relays.
        host: {
          relayClient: {},
          ...(options.announce !== undefined && options.announce.length > 0 ? { announce: options.announce } : {}),
        },
      },
    ).catch(async (err: unknown) => {
      await queue.close();
      throw new CliError(
        `Cannot listen on ${options.p2p}: ${listenFailureReason(err)}. Stop the other process or choose another --p2p.`,
      );
    });
    stack.push(
      () => home.stop(),
      // The DHT queries of a running announcement end first, so the drain does not wait for them.
      () => (home.cancelWork(), queue.close()),
    );
    const ctx = homeContext(paths, nodeKey, storage, { home, repositories });
    const node = new NodeRuntime(home, ctx, say, options.advertiseRelayed === true);
    await node.start();
    stack.push(async () => node.stop());

    const matrix: MatrixApi = await startMatrixApi(
      ctx,
      home.matrixPort(nodeHomeAccounts(ctx)),
      { port: options.port, mediaMaxBytes: options.mediaMaxBytes ?? DEFAULT_MEDIA_MAX_BYTES },
      (err) => say(`matrix: internal error: ${(err as Error).message ?? String(err)}`),
    );
    stack.push(() => matrix.close());
    // `polyhome proxy` reaches this home's Matrix client API over libp2p (--no-client-api-over-p2p: not).
    if (options.clientApiOverP2p !== false) {
      const clientApi = await serveClientApi(home.host, {
        url: matrix.url,
        maxBodyBytes: options.mediaMaxBytes ?? DEFAULT_MEDIA_MAX_BYTES,
        logger,
      });
      stack.push(() => clientApi.stop());
    }
    const control: ControlServer = await startControlServer(paths, node.handlers(matrix.url));
    stack.push(() => control.close());
    return {
      peerId: ctx.peerId,
      userIds: () => node.userIds(),
      addrs: home.addrs(),
      matrixUrl: matrix.url,
      stop: unwind,
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** The node's side of the Home: what it prints, which users it holds, catch-up progress, the control API. */
class NodeRuntime {
  readonly #unsubscribe: Array<() => void> = [];
  #users = new Map<string, string>();
  #received = 0;
  #receivedSince = 0;
  #lastProgress = 0;
  #progressTimer: NodeJS.Timeout | undefined;
  #advertiseTimer: NodeJS.Timeout | undefined;
  #advertised = '';
  // Strangers' sessions are refused quietly on a laptop; the rest a few lines a window, then a summary.
  readonly #refusals: RefusalLog;

  constructor(
    private readonly home: Home,
    readonly ctx: HomeContext,
    private readonly say: (line: string) => void,
    private readonly advertiseRelayed: boolean,
  ) {
    this.#refusals = new RefusalLog(lineLogger(say), { quiet: [NOT_A_HOME] });
  }

  userIds(): string[] {
    return [...this.#users.values()].sort();
  }

  /** Lists the accounts, subscribes to the Home's events and starts it. */
  async start(): Promise<void> {
    for (const row of await accounts(this.ctx)) this.#users.set(row.serverName, row.userId);
    this.#unsubscribe.push(
      this.home.on('applied', ({ ops }) => this.#progress(ops.length)),
      this.home.on('document', ({ peerId, document }) => {
        if (peerId !== undefined && document !== undefined) {
          this.say(`document seq ${document.seq} of ${document.user_id} from ${peerId}`);
        }
      }),
      this.home.on('adopted', ({ account, peerId, document }) => {
        this.#users.set(account, document.user_id);
        this.say(`joined ${document.user_id} (document seq ${document.seq}, from ${peerId})`);
      }),
      this.home.on('rejected', (refusal) => this.#refusals.record(refusal)),
    );
    const onAddrs = (): void => this.#addrsChanged();
    this.home.host.addEventListener('self:peer:update', onAddrs);
    this.#unsubscribe.push(() => this.home.host.removeEventListener('self:peer:update', onAddrs));
    await this.home.start();
  }

  stop(): void {
    if (this.#progressTimer !== undefined) clearTimeout(this.#progressTimer);
    if (this.#advertiseTimer !== undefined) clearTimeout(this.#advertiseTimer);
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#refusals.close();
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
        listening: this.home.addrs(),
        connected_peers: [...new Set(this.home.host.getConnections().map((c) => c.remotePeer.toString()))].sort(),
        connections: this.home.host.getConnections().map((c) => ({
          peer_id: c.remotePeer.toString(),
          addr: c.remoteAddr.toString(),
          relayed: isRelayedAddr(c.remoteAddr),
        })),
        accounts: await accountStatuses(ctx()),
      }),
      'home.list': () => listHomes(ctx()),
      'home.add': (a) =>
        addHomeByAddress(ctx(), str(a['target']) ?? '', {
          role: a['role'] === 'server' ? 'server' : 'client',
          token: str(a['token']),
          name: str(a['name']),
          user: str(a['user']),
          pairingCode: str(a['pairing_code']),
        }),
      'home.remove': (a) => removeHomeByPeerId(ctx(), str(a['peer_id']) ?? '', str(a['user'])),
      'device.list': () => listState(ctx(), 'devices'),
      'device.remove': (a) => removeDevice(ctx(), str(a['device_id']) ?? '', str(a['user'])),
      'room.list': () => listState(ctx(), 'memberships'),
      'room.join': (a) => setMembership(ctx(), str(a['room_id']) ?? '', 'join', str(a['user'])),
      'room.leave': (a) => setMembership(ctx(), str(a['room_id']) ?? '', 'leave', str(a['user'])),
      'login-token': (a) => loginToken(ctx(), str(a['user'])),
      export: (a) => exportAccount(ctx(), str(a['passphrase']) ?? '', str(a['user'])),
      backup: (a) => backupDataDir(ctx(), str(a['out']) ?? ''),
    };
  }

  // The relayed addresses changed (a reservation made, or lost with its relay): once they settle, say so, announce
  // the accounts again (provider records carry the addresses; identify already pushed them to connected peers),
  // and with --advertise-relayed put them in the documents this node signs.
  #addrsChanged(): void {
    const relayed = this.home.addrs().filter(isRelayedAddr).slice(0, MAX_ADVERTISED_ADDRS);
    const key = relayed.join(',');
    if (key === this.#advertised) return;
    if (this.#advertiseTimer !== undefined) clearTimeout(this.#advertiseTimer);
    this.#advertiseTimer = setTimeout(() => {
      this.#advertiseTimer = undefined;
      this.#advertised = key;
      this.say(relayed.length > 0 ? `relayed ${relayed.join(' ')}` : 'relayed none');
      for (const account of this.home.hosted()) {
        this.home.scheduleAnnounce(account).catch((err: unknown) => this.say(`announce: ${(err as Error).message}`));
      }
      if (!this.advertiseRelayed) return;
      advertiseAddrs(this.ctx, relayed).then(
        (users) => users.forEach((u) => this.say(`document of ${u}: relayed addresses advertised`)),
        (err: unknown) => this.say(`relayed addresses not advertised: ${(err as Error).message}`),
      );
    }, ADVERTISE_DELAY_MS);
    this.#advertiseTimer.unref();
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
}
