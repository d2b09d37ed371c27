// Identity: Ed25519 sign and verify through Node's native crypto and through @noble/curves (the
// portable path), and the Matrix canonical JSON encode rate, all in one run on this machine.
// Each figure is measured for about 1.5 s after a short warm-up. Uses the built library (dist).
import { performance } from 'node:perf_hooks';
import {
  canonicalJson,
  canonicalJsonBytes,
  generateKeyPair,
  nativeEd25519,
  nobleEd25519,
  signJson,
  verifyJson,
} from '@polyhome/identity';

export const description = 'Ed25519 sign/verify (native vs noble) and canonical JSON encoding';

const SECONDS = 1.5;

// Runs fn in growing batches until `seconds` have passed; returns operations per second.
function rate(fn, seconds = SECONDS) {
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) fn();
  let ops = 0;
  let batch = 16;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < seconds * 1000) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    elapsed = performance.now() - start;
    if (elapsed < 100) batch *= 2;
  }
  return ops / (elapsed / 1000);
}

// A replicated-state op as DESIGN.md shows it, with a device.put body of realistic size.
function sampleOp(origin) {
  return {
    type: 'polyhome.op',
    account: 'a'.repeat(64),
    origin,
    seq: 17,
    lamport: 42,
    doc_seq: 3,
    ts: 1764000000000,
    op: 'device.put',
    key: 'ABCDEFGHIJ',
    body: {
      user_id: `@alice:${'a'.repeat(64)}`,
      device_id: 'ABCDEFGHIJ',
      algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
      keys: {
        'curve25519:ABCDEFGHIJ': '3C5BFWi2Y8MaVvjM8M22DBmh24PmgR0nPvJOIArzgyI',
        'ed25519:ABCDEFGHIJ': 'lEuiRJBit0IG6nUf5pUzWTUEsRVVe/HJkoKuEww9ULI',
      },
      display_name: 'Laptop – Élise’s 日本語 client',
      home: '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN',
    },
  };
}

export async function run(ctx) {
  const rows = [];
  const { secretKey, publicKey } = generateKeyPair();
  const op = sampleOp('12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN');
  const message = canonicalJsonBytes(op);
  const backends = [nobleEd25519, ...(nativeEd25519 ? [nativeEd25519] : [])];
  if (!nativeEd25519) ctx.progress('node:crypto Ed25519 unavailable: native rows skipped');

  for (const backend of backends) {
    ctx.progress(`${backend.name}: sign`);
    const signature = backend.sign(message, secretKey);
    rows.push({
      figure: `sign.${backend.name}_per_s`,
      value: rate(() => backend.sign(message, secretKey)),
      unit: 'ops/s',
      reference: `Ed25519, ${message.length}-byte op; FINDINGS: ${backend.name === 'native' ? '~28k/s' : '~2.4k/s'}`,
    });
    ctx.progress(`${backend.name}: verify`);
    rows.push({
      figure: `verify.${backend.name}_per_s`,
      value: rate(() => {
        if (!backend.verify(signature, message, publicKey)) throw new Error('verification failed');
      }),
      unit: 'ops/s',
      reference: `Ed25519, ${message.length}-byte op; FINDINGS: ${backend.name === 'native' ? '~9.3k/s' : '~650/s'}`,
    });
  }

  ctx.progress('signJson/verifyJson end to end (default backend)');
  const signed = signJson(op, op.account, 'ed25519:root', secretKey);
  rows.push({
    figure: 'sign_json.op_per_s',
    value: rate(() => signJson(op, op.account, 'ed25519:root', secretKey)),
    unit: 'ops/s',
    reference: 'canonical JSON + sign, default backend',
  });
  rows.push({
    figure: 'verify_json.op_per_s',
    value: rate(() => verifyJson(signed, op.account, 'ed25519:root', publicKey)),
    unit: 'ops/s',
    reference: 'canonical JSON + verify, default backend',
  });

  ctx.progress('canonical JSON encode');
  const text = canonicalJson(op);
  const encodes = rate(() => canonicalJsonBytes(op));
  rows.push({
    figure: 'canonical_json.encode_per_s',
    value: encodes,
    unit: 'ops/s',
    reference: `${message.length}-byte op`,
  });
  rows.push({
    figure: 'canonical_json.encode_mib_per_s',
    value: (encodes * message.length) / 2 ** 20,
    unit: 'MiB/s',
    reference: `JSON.stringify of the same: ${Math.round(rate(() => JSON.stringify(op), 0.5))} ops/s`,
  });
  if (text.length === 0) throw new Error('empty encoding');
  return rows;
}
