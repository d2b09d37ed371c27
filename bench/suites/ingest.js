// Ingest: verified and stored ops per second on one home (SqlReplicaStore: validate, verify the
// signatures, insert into the op log, update the materialized state, all in one transaction per batch; the
// signatures of the next batch verified ahead on the thread pool meanwhile, as a sync session reads ahead),
// on PGlite and on PostgreSQL, next to the raw native Ed25519 verify rate of the same ops in the same run.
// PostgreSQL is used when BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) answers.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  addHome,
  createAccountDocument,
  keyPairFromSeed,
  nativeEd25519,
  peerIdFromPublicKey,
} from '@polyhome/identity';
import { openStorage, SqlReplicaStore } from '@polyhome/storage';
import { createOp, opHash, validateOp, verifyOpsAhead } from '@polyhome/sync';
import pg from 'pg';
import { signedDeviceBody } from '../lib/device-keys.js';
import { signatureChecks, verifyChecks } from '../lib/verify-reference.js';

export const description = 'verified + stored ops per second on one home, next to the raw native verify rate';

const OPS = Number(process.env.BENCH_INGEST_OPS ?? 6000);
const BATCH = 200;
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function seed(label) {
  const bytes = new Uint8Array(32);
  new TextEncoder().encodeInto(label.padEnd(32, '.').slice(0, 32), bytes);
  return bytes;
}

function fixture(ops) {
  const root = keyPairFromSeed(seed('bench-root'));
  const homes = [0, 1, 2].map((i) => {
    const kp = keyPairFromSeed(seed(`bench-home-${i}`));
    const peerId = peerIdFromPublicKey(kp.publicKey);
    return { kp, peerId, home: { peer_id: peerId, role: i === 0 ? 'server' : 'client', name: `home-${i}`, addrs: [] } };
  });
  let document = createAccountDocument({ localpart: 'bench', rootKey: root.secretKey, home: homes[0].home });
  for (const h of homes.slice(1)) document = addHome(document, h.home, root.secretKey);
  const account = document.user_id.slice(document.user_id.indexOf(':') + 1);
  const seqs = homes.map(() => 0);
  const out = [];
  for (let i = 0; i < ops; i++) {
    const h = i % homes.length;
    seqs[h] += 1;
    const deviceId = `DEV${i % 500}`;
    out.push(
      createOp(
        {
          account,
          origin: homes[h].peerId,
          seq: seqs[h],
          lamport: i + 1,
          doc_seq: document.seq,
          ts: 1764000000000 + i,
          op: 'device.put',
          key: deviceId,
          body: signedDeviceBody(document.user_id, deviceId, { display_name: `device ${i}` }),
        },
        homes[h].kp.secretKey,
      ),
    );
  }
  return { document, account, ops: out };
}

// `ahead`: signatures verified ahead on the thread pool (the default path). Without it, the store is pinned to the
// native backend, which verifies inside the transaction as every batch did before: the same-run reference.
async function ingest(storage, document, ops, ctx, label, ahead) {
  const store = new SqlReplicaStore(storage.dataSource, ahead ? {} : { ed25519: { backend: nativeEd25519 } });
  const account = await store.hostAccount(document, { custody: 'self' });
  const batches = [];
  for (let i = 0; i < ops.length; i += BATCH) batches.push(ops.slice(i, i + BATCH));
  const start = performance.now();
  for (let b = 0; b < batches.length; b++) {
    const i = b * BATCH;
    // As a sync session does: the next batch is read ahead and its signatures verified on the thread pool while
    // this one is applied.
    if (ahead && b + 1 < batches.length) void verifyOpsAhead(batches[b + 1]);
    const result = await store.applyOps(account, batches[b], 'bench');
    if (result.accepted.length !== Math.min(BATCH, ops.length - i)) {
      throw new Error(`ingest refused ops: ${JSON.stringify(result.rejected.slice(0, 2))}`);
    }
    if ((i / BATCH) % 10 === 0) ctx.progress(`${label}: ${i + BATCH}/${ops.length}`);
  }
  return ops.length / ((performance.now() - start) / 1000);
}

export async function run(ctx) {
  ctx.progress(`signing ${OPS} ops`);
  const { document, ops } = fixture(OPS);

  // The physical reference: native Ed25519 verify of every signature these ops carry, measured the same way a
  // home must check them: the op's signature by its origin home, and the device keys' self-signature.
  const prepared = signatureChecks(ops);
  const verifyAll = () => verifyChecks(prepared);
  const vStart = performance.now();
  verifyAll();
  const verifyRate = prepared.length / ((performance.now() - vStart) / 1000);

  // Validation alone (structure, caps, origin, signature; no database) and the content hash, each beside
  // native verify of the same ops measured right before it; rounds alternate, the best of each is kept.
  ctx.progress('validateOp and opHash, beside native verify');
  const best = { verify: 0, validate: 0, hash: 0 };
  const rate = (key, fn) => {
    const start = performance.now();
    fn();
    best[key] = Math.max(best[key], ops.length / ((performance.now() - start) / 1000));
  };
  for (let round = 0; round < 3; round++) {
    rate('verify', verifyAll);
    rate('validate', () => {
      for (const op of ops) if (!validateOp(op, document).ok) throw new Error('validateOp refused a bench op');
    });
    rate('hash', () => {
      for (const op of ops) opHash(op);
    });
  }

  const rows = [
    {
      figure: 'validate.ops_per_s',
      value: best.validate,
      unit: 'ops/s',
      reference: `validateOp, no database; native verify ${Math.round(best.verify)} ops/s (${(best.verify / best.validate).toFixed(2)}x)`,
    },
    {
      figure: 'op_hash.per_s',
      value: best.hash,
      unit: 'ops/s',
      reference: `opHash of the same ops; native verify ${Math.round(best.verify)} ops/s`,
    },
  ];
  // Each engine ingests the ops into a fresh database four times, alternating the path before (verified in the
  // transaction) and the default (verified ahead); the best of each is kept, so load from elsewhere hits both alike.
  const measure = async (label, fresh) => {
    const best = { inLock: 0, ahead: 0 };
    for (const ahead of [false, true, false, true]) {
      const { init, dispose } = await fresh();
      try {
        const storage = await openStorage(init);
        try {
          const rate = await ingest(storage, document, ops, ctx, `${label}${ahead ? '' : ' (in lock)'}`, ahead);
          const key = ahead ? 'ahead' : 'inLock';
          best[key] = Math.max(best[key], rate);
        } finally {
          await storage.close();
        }
      } finally {
        await dispose();
      }
    }
    rows.push({
      figure: `ingest.${label.toLowerCase()}_ops_per_s`,
      value: best.ahead,
      unit: 'ops/s',
      reference: `${OPS} ops, batches of ${BATCH}, best of 2; native verify ${Math.round(verifyRate)} ops/s (${((100 * best.ahead) / verifyRate).toFixed(0)}%); verified in the transaction ${Math.round(best.inLock)} ops/s`,
    });
  };

  await measure('PGlite', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-'));
    return { init: { dataDir: dir }, dispose: () => rm(dir, { recursive: true, force: true }) };
  });

  const name = `polyhome_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  let reachable = true;
  try {
    await admin.connect();
  } catch (err) {
    reachable = false;
    ctx.progress(`PostgreSQL not reachable at ${ADMIN_URL} (${err.message}); skipping the PostgreSQL figure`);
    rows.push({
      figure: 'ingest.postgresql_ops_per_s',
      value: 'not measured',
      unit: '',
      reference: 'PostgreSQL unreachable',
    });
  }
  if (reachable) {
    try {
      await measure('PostgreSQL', async () => {
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.query(`CREATE DATABASE "${name}"`);
        const url = new URL(ADMIN_URL);
        url.pathname = `/${name}`;
        return { init: { databaseUrl: url.toString(), dataDir: os.tmpdir() }, dispose: async () => undefined };
      });
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
  }
  rows.push({
    figure: 'verify.native_per_s',
    value: verifyRate,
    unit: 'ops/s',
    reference: 'physical reference: native Ed25519 verify of the same ops (2 signatures each: the op, the device keys)',
  });
  return rows;
}
