// A bench home: a real libp2p node with the sync service over the pure in-memory replica of @polyhome/sync
// behind the ReplicaStore port (as bench/suites/p2p.js uses). It makes one device.put per account it hosts
// and reports when the other end has acknowledged it.
import { multiaddr } from '@multiformats/multiaddr';
import { createPolyhomeHost, createSyncService } from '@polyhome/p2p';
import {
  applyOps,
  createReplica,
  documentOf,
  makeLocalOp,
  offerDocument,
  opsMissing,
  versionVector,
} from '@polyhome/sync';
import { signedDeviceBody } from './device-keys.js';

/** The ReplicaStore port over in-memory replicas. */
export class MemoryStore {
  replicas = new Map();
  host(document) {
    const replica = createReplica(document);
    this.replicas.set(replica.account, replica);
    return replica.account;
  }
  async document(account) {
    const r = this.replicas.get(account);
    return r === undefined ? undefined : documentOf(r);
  }
  async offerDocument(account, document) {
    const [r] = offerDocument(this.replicas.get(account), document);
    this.replicas.set(account, r);
    return documentOf(r);
  }
  async versionVector(account) {
    return versionVector(this.replicas.get(account));
  }
  async opsMissing(account, vv, limit) {
    return opsMissing(this.replicas.get(account), vv, limit);
  }
  async applyOps(account, ops) {
    const [r, result] = applyOps(this.replicas.get(account), ops);
    this.replicas.set(account, r);
    return result;
  }
}

/** A Matrix device as a device.put change. */
export function deviceChange(userId, deviceId) {
  return {
    op: 'device.put',
    key: deviceId,
    body: signedDeviceBody(userId, deviceId, { display_name: `bench device ${deviceId}` }),
  };
}

/**
 * Starts a home with `secretKey` hosting `documents` and makes `opsPerAccount` device.put ops in each (devices
 * renamed over and over, so an account stays the size of a real one), without dialing anyone yet: what is timed
 * afterwards is only the push. Resolves to { push(peerAddr, timeoutMs), stop() }; `push` dials `peerAddr` and waits
 * until that peer has acknowledged every op, its connection to the peer is lost (no connection left: aborted), or
 * `timeoutMs` passed. Never retries. `push` resolves to { total, acked, aborted, error }, error undefined when every
 * op was acknowledged.
 */
export async function prepareHome(secretKey, documents, opsPerAccount = 1) {
  const host = await createPolyhomeHost({ nodeKey: secretKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
  const sync = createSyncService(host);
  const self = host.peerId.toString();
  /** Ops not yet acknowledged, by account. */
  const waiting = new Map();
  const stop = async () => {
    await sync.stop();
    await host.stop();
  };
  try {
    await sync.start();
    const store = new MemoryStore();
    for (const document of documents) {
      const account = store.host(document);
      for (let k = 0; k < opsPerAccount; k++) {
        const change =
          opsPerAccount === 1
            ? deviceChange(document.user_id, 'BENCHDEV')
            : {
                op: 'device.put',
                key: `BENCHDEV${k % 16}`,
                body: signedDeviceBody(document.user_id, `BENCHDEV${k % 16}`, { display_name: `bench ${k}` }),
              };
        const op = makeLocalOp(store.replicas.get(account), secretKey, change, Date.now());
        const result = await store.applyOps(account, [op]);
        if (result.accepted.length !== 1) throw new Error(`local op refused: ${JSON.stringify(result.rejected[0])}`);
      }
      await sync.host(account, store);
      waiting.set(account, opsPerAccount);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const total = documents.length * opsPerAccount;
  const unacked = () => [...waiting.values()].reduce((n, left) => n + left, 0);
  return {
    stop,
    async push(peerAddr, timeoutMs = 120_000) {
      const target = multiaddr(peerAddr);
      const peer = target.getComponents().find((c) => c.name === 'p2p')?.value;
      let aborted = false;
      let timer;
      const done = new Promise((resolve, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `${unacked()}/${total} ops not acknowledged in ${timeoutMs} ms ` +
                  `(${sync.sessions().length} sessions, ${host.getConnections().length} connections)`,
              ),
            ),
          timeoutMs,
        );
        sync.on('acked', ({ account, vv }) => {
          if (!waiting.has(account)) return;
          const left = opsPerAccount - Math.min(opsPerAccount, vv[self] ?? 0);
          if (left === 0) waiting.delete(account);
          else waiting.set(account, left);
          if (waiting.size === 0) resolve();
        });
        host.addEventListener('connection:close', (event) => {
          if (waiting.size === 0 || event.detail.remotePeer.toString() !== peer) return;
          if (host.getConnections(event.detail.remotePeer).length > 0) return;
          aborted = true;
          reject(new Error(`the connection to the server was closed with ${unacked()}/${total} ops unacknowledged`));
        });
      });
      try {
        await host.dial(target);
        await done;
        return { total, acked: total, aborted: false, error: undefined };
      } catch (err) {
        return { total, acked: total - unacked(), aborted, error: err.message };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** `prepareHome` with one op per account, pushed at once, then the home stopped. */
export async function pushOneOpEach(secretKey, documents, peerAddr, timeoutMs = 120_000) {
  const home = await prepareHome(secretKey, documents);
  try {
    return await home.push(peerAddr, timeoutMs);
  } finally {
    await home.stop();
  }
}
