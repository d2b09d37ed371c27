// Connect: two homes that share many accounts (each holding one op per account the other lacks) connect; the
// figure is the time from the dial to every account converged on both ends, and the number of connections
// closed on the way (yamux aborted the whole connection when 50 sync streams opened at once). The reference,
// in the same run, is the same for two homes sharing one account. A closed connection is redialled, as a home
// reconnects, and counted. Real TCP on 127.0.0.1, built libraries, the in-memory replica store.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { addHome, createAccountDocument, SecretKey } from '@polyhome/identity';
import { createPolyhomeHost, createSyncService } from '@polyhome/p2p';
import { makeLocalOp } from '@polyhome/sync';
import { benchHome } from '../lib/accounts.js';
import { deviceChange, MemoryStore } from '../lib/memory-home.js';

export const description = 'two homes sharing 100 accounts connect: dial to all converged, aborted connections';

const ACCOUNTS = 100;
/** Longest wait for convergence (a condition deadline, not a figure). */
const DEADLINE_MS = 120_000;

async function home(label, documents) {
  const { secretKey, peerId } = benchHome(label, 'server');
  const host = await createPolyhomeHost({
    nodeKey: secretKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
  });
  const sync = createSyncService(host);
  await sync.start();
  const store = new MemoryStore();
  for (const document of documents) {
    const account = store.host(document);
    const op = makeLocalOp(store.replicas.get(account), secretKey, deviceChange(document.user_id, `D${label}`), 1);
    const result = await store.applyOps(account, [op]);
    if (result.accepted.length !== 1) throw new Error(`local op refused: ${JSON.stringify(result.rejected[0])}`);
  }
  const closes = [];
  host.addEventListener('connection:close', () => closes.push(performance.now()));
  return { host, sync, store, peerId, closes, addr: host.getMultiaddrs()[0] };
}

// Dial to every account holding both homes' ops on both ends; a closed connection is dialled again.
async function round(count, run) {
  const a = benchHome(`connect:${run}:a`, 'server');
  const b = benchHome(`connect:${run}:b`, 'server');
  const documents = Array.from({ length: count }, (_, i) => {
    const rootKey = SecretKey.generate();
    return addHome(createAccountDocument({ localpart: `u${i}`, rootKey, home: a.home }), b.home, rootKey);
  });
  const na = await home(`connect:${run}:a`, documents);
  const nb = await home(`connect:${run}:b`, documents);
  try {
    const list = na.store.replicas.keys();
    const accounts = [...list];
    na.sync.hostMany(
      accounts.map((account) => ({ account, homes: [na.peerId, nb.peerId] })),
      na.store,
    );
    nb.sync.hostMany(
      accounts.map((account) => ({ account, homes: [na.peerId, nb.peerId] })),
      nb.store,
    );
    const converged = async () => {
      let n = 0;
      for (const account of accounts) {
        const [va, vb] = [await na.store.versionVector(account), await nb.store.versionVector(account)];
        if (va[nb.peerId] === 1 && vb[na.peerId] === 1) n++;
      }
      return n;
    };
    const t0 = performance.now();
    await nb.host.dial(na.addr).catch(() => undefined);
    let done = 0;
    while (performance.now() - t0 < DEADLINE_MS) {
      done = await converged();
      if (done === count) break;
      if (nb.host.getConnections(na.host.peerId).length === 0) await nb.host.dial(na.addr).catch(() => undefined);
      await sleep(5);
    }
    const seconds = (performance.now() - t0) / 1000;
    // Each closed connection is seen by both ends: count it once.
    const aborted = Math.max(na.closes.length, nb.closes.length);
    return { seconds, done, aborted };
  } finally {
    await Promise.all([na, nb].map(async (n) => (await n.sync.stop(), await n.host.stop())));
  }
}

export async function run(ctx) {
  ctx.progress('one shared account (reference)');
  const one = await round(1, 'one');
  ctx.progress(`${ACCOUNTS} shared accounts`);
  const many = await round(ACCOUNTS, 'many');
  const reference = `one shared account: ${(one.seconds * 1000).toFixed(0)} ms, ${one.aborted} aborted`;
  return [
    {
      figure: 'connect.accounts_converged_s',
      value: many.seconds,
      unit: 's',
      reference: `${many.done}/${ACCOUNTS} converged (deadline ${DEADLINE_MS / 1000} s); ${reference}`,
    },
    {
      figure: 'connect.aborted_connections',
      value: many.aborted,
      unit: 'connections',
      reference,
    },
  ];
}
