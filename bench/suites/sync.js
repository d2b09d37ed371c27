// Sync engine: making local ops, applying received ops (signature-verify bound), and a full anti-entropy
// session between two in-memory replicas, all through the pure engine (no network, no database).
// Uses the built libraries (dist).
import { performance } from 'node:perf_hooks';
import { addHome, createAccountDocument, keyPairFromSeed, peerIdFromPublicKey } from '@polyhome/identity';
import {
  applyOps,
  createReplica,
  documentOf,
  generate,
  initSession,
  logDigests,
  makeLocalOp,
  opsMissing,
  opsRequest,
  receive,
  stateOf,
  versionVector,
} from '@polyhome/sync';
import { signedDeviceBody } from '../lib/device-keys.js';

export const description = 'sync engine: local ops, applying received ops, a full session between two replicas';

const OPS = 5000;

function seed(n) {
  return Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? n : i));
}

function account() {
  const root = keyPairFromSeed(seed(1)).secretKey;
  const homes = [2, 3].map((n) => {
    const { secretKey, publicKey } = keyPairFromSeed(seed(n));
    const peerId = peerIdFromPublicKey(publicKey);
    return { secretKey, home: { peer_id: peerId, role: 'client', name: `home-${n}`, addrs: [] } };
  });
  let document = createAccountDocument({ localpart: 'bench', rootKey: root, home: homes[0].home }, { ts: 0 });
  document = addHome(document, homes[1].home, root, { ts: 0 });
  return { document, homes };
}

// The same loop a libp2p driver runs: generate until null.
function pump(session, replica) {
  const out = [];
  for (;;) {
    const vv = versionVector(replica);
    const digests = logDigests(replica);
    const request = opsRequest(session, vv, digests);
    const ops = request === null ? [] : opsMissing(replica, request.vv, request.limit);
    const [next, message] = generate(session, { document: documentOf(replica), vv, digests, ops });
    session = next;
    if (message === null) return [session, out];
    out.push(JSON.parse(JSON.stringify(message)));
  }
}

export async function run(ctx) {
  const rows = [];
  const { document, homes } = account();
  const user = document.user_id;
  ctx.progress(`making ${OPS} local ops`);
  let source = createReplica(document);
  let start = performance.now();
  const made = [];
  for (let i = 0; i < OPS; i++) {
    const deviceId = `DEV${i % 50}`;
    const body = signedDeviceBody(user, deviceId);
    const op = makeLocalOp(source, homes[0].secretKey, { op: 'device.put', key: deviceId, body }, i);
    [source] = applyOps(source, [op]);
    made.push(op);
  }
  rows.push({
    figure: 'sync.local_op_per_s',
    value: OPS / ((performance.now() - start) / 1000),
    unit: 'ops/s',
    reference: 'make + apply a local op (sign, validate)',
  });

  ctx.progress('applying received ops');
  let target = createReplica(document);
  start = performance.now();
  for (let i = 0; i < made.length; i += 500) [target] = applyOps(target, made.slice(i, i + 500));
  rows.push({
    figure: 'sync.apply_received_per_s',
    value: OPS / ((performance.now() - start) / 1000),
    unit: 'ops/s',
    reference: 'batches of 500 (validate, verify)',
  });

  ctx.progress('full session');
  let a = { s: initSession(source.account), r: source };
  let b = { s: initSession(source.account), r: createReplica(document) };
  const queues = [[], []];
  start = performance.now();
  [a.s, queues[1]] = pump(a.s, a.r);
  [b.s, queues[0]] = pump(b.s, b.r);
  let messages = 0;
  while (queues[0].length + queues[1].length > 0) {
    const side = queues[1].length > 0 ? 1 : 0;
    const end = side === 1 ? b : a;
    const message = queues[side].shift();
    messages++;
    let effects;
    [end.s, effects] = receive(end.s, message);
    for (const effect of effects) if (effect.kind === 'apply_ops') [end.r] = applyOps(end.r, effect.ops);
    const [s, out] = pump(end.s, end.r);
    end.s = s;
    queues[side === 1 ? 0 : 1].push(...out);
  }
  const seconds = (performance.now() - start) / 1000;
  if (Object.keys(stateOf(b.r).devices).length !== 50) throw new Error('session did not converge');
  rows.push({
    figure: 'sync.session_ops_per_s',
    value: OPS / seconds,
    unit: 'ops/s',
    reference: `full session, ${OPS} ops to an empty home (${messages} messages)`,
  });
  return rows;
}
