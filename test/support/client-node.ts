// A client-side home in the test process (real libp2p node, in-memory store) for an account whose key the
// test holds: it signs the documents, enrolls server processes, writes ops, and remembers what every other
// home acknowledged to it.
import { multiaddr } from '@multiformats/multiaddr';
import { addHome, createAccountDocument, type AccountDocument, type Home } from '@polyhome/identity';
import type { ConnectionGater } from '@libp2p/interface';
import { createPolyhomeHost, createSyncService, type PolyhomeHost, type SyncService } from '@polyhome/p2p';
import type { Op, VersionVector } from '@polyhome/sync';
import { MemoryReplicaStore, OpWriter, deviceBody, makeAccount, makeHome, memberBody } from '@polyhome/sync/testing';
import type { FixtureAccount, FixtureHome } from '@polyhome/sync/testing';
import { matrixLogin, type Answer, type ServerProcess } from './server-process.js';

/** What to start a client node with. */
export interface ClientNodeInit {
  seed: string;
  /** Listen port (0: any). */
  port?: number;
  /** Addresses to announce instead (e.g. a proxy in front of it); also the addrs of its home entry. */
  announce?: string[];
  /**
   * TCP ports on 127.0.0.1 this node never dials. Its DHT learns a peer's real addresses through identify and
   * may dial them on its own (routing-table pings): a partition test keeps it off the server's real port.
   */
  denyDialPorts?: number[];
}

/** The home entry of a server process in a document. */
export function serverHomeOf(server: ServerProcess, name: string, addrs = [server.addr]): Home {
  return { peer_id: server.peerId, role: 'server', name, addrs };
}

export class ClientNode {
  /** The highest vector each peer acknowledged to this node (what it said it durably holds). */
  readonly acked = new Map<string, VersionVector>();
  document: AccountDocument;
  readonly writer: OpWriter;
  private written = 0;

  private constructor(
    readonly account: FixtureAccount,
    readonly home: FixtureHome,
    document: AccountDocument,
    readonly host: PolyhomeHost,
    readonly sync: SyncService,
    readonly store: MemoryReplicaStore,
  ) {
    this.document = document;
    this.writer = new OpWriter(account, home, document.seq);
    sync.on('acked', ({ account: name, peerId, vv }) => {
      if (name !== account.serverName) return;
      const merged = { ...(this.acked.get(peerId) ?? {}) };
      for (const [origin, seq] of Object.entries(vv)) merged[origin] = Math.max(merged[origin] ?? 0, seq);
      this.acked.set(peerId, merged);
    });
  }

  /** A client node of a fresh account (made from `seed`) whose only home it is. */
  static async start(init: ClientNodeInit): Promise<ClientNode> {
    const localpart = init.seed.replace(/[^a-z0-9]/g, '').slice(0, 32) || 'user';
    const base = makeAccount({ seed: init.seed, localpart, homes: 1, roles: ['client'] });
    const first = base.homes[0]!;
    // With announced addresses (a proxy in front of it), its home entry names those instead of none.
    const home: FixtureHome =
      init.announce === undefined ? first : { ...first, home: { ...first.home, addrs: init.announce } };
    const account: FixtureAccount =
      init.announce === undefined
        ? base
        : {
            ...base,
            homes: [home],
            document: createAccountDocument({ localpart, rootKey: base.rootKey, home: home.home }),
          };
    return ClientNode.open(account, home, account.document, init);
  }

  /** Another client home of the same account (its own key from `label`), on `document`. */
  static async another(
    account: FixtureAccount,
    label: string,
    document: AccountDocument,
    init: Omit<ClientNodeInit, 'seed'> = {},
  ): Promise<ClientNode> {
    return ClientNode.open(account, makeHome(label, 'client', label.slice(-20)), document, init);
  }

  private static async open(
    account: FixtureAccount,
    home: FixtureHome,
    document: AccountDocument,
    init: Omit<ClientNodeInit, 'seed'>,
  ): Promise<ClientNode> {
    const host = await createPolyhomeHost({
      nodeKey: home.secretKey,
      listen: [`/ip4/127.0.0.1/tcp/${init.port ?? 0}`],
      ...(init.announce !== undefined ? { announce: init.announce } : {}),
      ...(init.denyDialPorts !== undefined ? { connectionGater: denyPorts(init.denyDialPorts) } : {}),
      inboundConnectionThreshold: 10_000,
    });
    const sync = createSyncService(host);
    await sync.start();
    const store = new MemoryReplicaStore();
    store.host(document);
    await sync.host(account.serverName, store);
    return new ClientNode(account, home, document, host, sync, store);
  }

  get serverName(): string {
    return this.account.serverName;
  }

  get userId(): string {
    return this.account.userId;
  }

  /** Signs the next document, adding a home, and puts it in force here (not yet on any server). */
  async addHome(home: Home): Promise<AccountDocument> {
    const next = addHome(this.document, home, this.account.rootKey);
    await this.adopt(next);
    return next;
  }

  /** Puts a document in force here and tells the sessions. */
  async adopt(document: AccountDocument): Promise<void> {
    this.document = await this.store.offerDocument(this.serverName, document, 'local');
    this.writer.docSeq = this.document.seq;
    await this.sync.documentChanged(this.serverName);
  }

  /** Enrolls a server process over its HTTP route with the document in force here. */
  async enroll(server: ServerProcess): Promise<Answer> {
    return server.request('POST', '/_polyhome/v1/enroll', { document: this.document });
  }

  /** Dials a server and opens the account's sessions with every home it can reach. */
  async connect(server: ServerProcess): Promise<void> {
    await this.host.dial(multiaddr(server.addr));
    await this.sync.connectHomes(this.serverName);
  }

  /**
   * Writes `count` ops of this home (device puts and room memberships), in batches of `batch`. Without
   * `publish` they are only stored: no session is told, as if a push had been lost.
   */
  async write(count: number, label: string, batch = 50, publish = true): Promise<Op[]> {
    const all: Op[] = [];
    for (let done = 0; done < count; done += batch) {
      const ops: Op[] = [];
      for (let i = done; i < Math.min(count, done + batch); i++) {
        const n = this.written++;
        ops.push(
          n % 3 === 2
            ? this.writer.make('member.set', `!${label}${n % 7}:example`, {
                ...memberBody(`!${label}${n % 7}:example`, n % 2 ? 'join' : 'leave'),
              })
            : this.writer.make('device.put', `${label}_${n}`, { ...deviceBody(this.account, `${label}_${n}`) }),
        );
      }
      const result = await this.store.applyOps(this.serverName, ops, 'local');
      if (result.accepted.length !== ops.length) {
        throw new Error(`the client's own ops were refused: ${JSON.stringify(result.rejected[0])}`);
      }
      if (publish) this.sync.publish(this.serverName, ops);
      all.push(...ops);
    }
    return all;
  }

  async versionVector(): Promise<VersionVector> {
    return this.store.versionVector(this.serverName);
  }

  async logDigests(): Promise<Record<string, string>> {
    return this.store.logDigests(this.serverName);
  }

  async stop(): Promise<void> {
    await this.sync.stop();
    await this.host.stop();
  }
}

/** Logs a new Matrix device in on a server (admin login token, then m.login.token): one op of that server. */
export async function loginDevice(server: ServerProcess, userId: string): Promise<string> {
  return (await matrixLogin(server, userId)).deviceId;
}

/** A gater refusing dials to the given TCP ports. */
function denyPorts(ports: number[]): ConnectionGater {
  const denied = new Set(ports.map(String));
  return {
    denyDialMultiaddr: (ma) => {
      const tcp = ma.getComponents().find((c) => c.name === 'tcp');
      return tcp?.value !== undefined && denied.has(tcp.value);
    },
  };
}
