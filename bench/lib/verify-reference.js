// The physical reference of op ingest: native Ed25519 verify of every signature a device.put op carries, checked
// the way a home must check them: the op's signature by its origin home, and the device keys' self-signature.
import { decodeBase64, homeKeyId, nativeEd25519, publicKeyFromPeerId, signedBytes } from '@polyhome/identity';
import { deviceSignedBytes } from '@polyhome/sync';
import { deviceKeyPair } from './device-keys.js';

/** The two checks of each op (bytes, signature, key), prepared once so the timing holds verify alone. */
export function signatureChecks(ops) {
  return ops.map((op) => [
    {
      bytes: signedBytes(op),
      sig: decodeBase64(op.signatures[op.account][homeKeyId(op.origin)]),
      key: publicKeyFromPeerId(op.origin),
    },
    {
      bytes: deviceSignedBytes(op.body),
      sig: decodeBase64(op.body.signatures[op.body.user_id][`ed25519:${op.key}`]),
      key: deviceKeyPair(op.key).publicKey,
    },
  ]);
}

/** Verifies every prepared check natively; throws on the first that fails. */
export function verifyChecks(prepared) {
  for (const checks of prepared) {
    for (const p of checks) if (!nativeEd25519.verify(p.sig, p.bytes, p.key)) throw new Error('verify failed');
  }
}
