// Bench accounts: many valid signed account documents made with @polyhome/identity (native Ed25519) on worker
// threads, and their bulk creation directly in storage (multi-row inserts of the rows that
// SqlReplicaStore.hostAccounts, the verifying library path, writes). Home keys come from labels.
import { createHash } from 'node:crypto';
import os from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
  addHome,
  canonicalJsonBytes,
  createAccountDocument,
  keyPairFromSeed,
  peerIdFromPublicKey,
  SecretKey,
  verifyAccountDocument,
} from '@polyhome/identity';

/** A 32-byte seed from a label. */
export function seed(label) {
  return new Uint8Array(createHash('sha256').update(`polyhome-bench:${label}`).digest());
}

/** A home made from a label: its key, its PeerId and the home entry of a document. */
export function benchHome(label, role = 'client') {
  const { secretKey, publicKey } = keyPairFromSeed(seed(label));
  const peerId = peerIdFromPublicKey(publicKey);
  return { secretKey, peerId, home: { peer_id: peerId, role, name: label.slice(-60), addrs: [] } };
}

function makeRange(from, homes) {
  return homes.map((list, j) => {
    const rootKey = SecretKey.generate();
    const [first, ...rest] = list;
    let document = createAccountDocument({ localpart: `u${from + j}`, rootKey, home: first });
    for (const home of rest) document = addHome(document, home, rootKey);
    return document;
  });
}

if (!isMainThread && workerData?.kind === 'polyhome-bench-accounts') {
  parentPort.postMessage(makeRange(workerData.from, workerData.homes));
}

/**
 * Makes `count` accounts, each with a fresh random root key and the homes `homesOf(i)` returns (home
 * entries, in order), on one worker thread per core (key generation is pure JS). Returns { document,
 * serverName } per account, in order.
 */
export async function makeAccounts(count, homesOf, progress = () => undefined) {
  const threads = Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 8));
  const per = Math.ceil(count / threads);
  const started = Date.now();
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const from = t * per;
      const homes = Array.from({ length: Math.max(0, Math.min(per, count - from)) }, (_, j) => homesOf(from + j));
      return new Promise((resolve, reject) => {
        const worker = new Worker(new URL(import.meta.url), {
          workerData: { kind: 'polyhome-bench-accounts', from, homes },
        });
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    }),
  );
  const documents = parts.flat();
  progress(
    `made ${count} signed account documents in ${((Date.now() - started) / 1000).toFixed(1)} s (${threads} threads)`,
  );
  return documents.map((document) => ({
    document,
    serverName: document.user_id.slice(document.user_id.indexOf(':') + 1),
  }));
}

/**
 * Creates the accounts directly in storage: multi-row inserts into `account` and `account_document`, the
 * same rows SqlReplicaStore.hostAccounts writes, without verifying each signature again (the documents were
 * just made and signed by @polyhome/identity; verifying 100,000 costs minutes on a loaded 2-core machine).
 * `verifySample` documents are verified with verifyAccountDocument first. Returns the seconds taken.
 */
export async function hostInStorage(
  dataSource,
  accounts,
  progress = () => undefined,
  { chunk = 1_000, verifySample = 100 } = {},
) {
  const started = Date.now();
  const step = Math.max(1, Math.floor(accounts.length / verifySample));
  for (let i = 0; i < accounts.length; i += step) verifyAccountDocument(accounts[i].document);
  for (let i = 0; i < accounts.length; i += chunk) {
    const part = accounts.slice(i, i + chunk);
    await dataSource.transaction(async (manager) => {
      // By table name: the entity classes are internal to @polyhome/storage.
      await manager.getRepository('account').insert(
        part.map((a) => ({
          serverName: a.serverName,
          userId: a.document.user_id,
          custody: 'self',
          sealedRootKey: null,
          docSeq: String(a.document.seq),
        })),
      );
      await manager.getRepository('account_document').insert(
        part.map((a) => {
          const content = { ...a.document };
          delete content.signatures;
          return {
            serverName: a.serverName,
            seq: String(a.document.seq),
            document: a.document,
            contentHash: createHash('sha256').update(canonicalJsonBytes(content)).digest(),
            receivedFrom: null,
          };
        }),
      );
    });
    if ((i + chunk) % 20_000 === 0 || i + chunk >= accounts.length) {
      progress(`stored ${Math.min(i + chunk, accounts.length)}/${accounts.length} accounts`);
    }
  }
  return (Date.now() - started) / 1000;
}
