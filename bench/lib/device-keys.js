// Self-signed Matrix device keys for bench ops. Every `device.put` a home accepts must carry a valid
// self-signature by the device's own Ed25519 key (op validation checks it), so bench ops sign theirs for real.
// Each device id has a fixed key (from a seed derived from the id), kept once made.
import { encodeBase64, keyPairFromSeed, sha256, signBytes, signedBytes } from '@polyhome/identity';

const keys = new Map();

/** The Ed25519 key pair of a bench device (the same id gives the same key). */
export function deviceKeyPair(deviceId) {
  let pair = keys.get(deviceId);
  if (pair === undefined) {
    pair = keyPairFromSeed(sha256(new TextEncoder().encode(`bench-device:${deviceId}`)));
    keys.set(deviceId, pair);
  }
  return pair;
}

/**
 * A `device.put` body: the DeviceKeys object (two algorithms, a curve25519 and an ed25519 key) self-signed by the
 * device's key, plus `extra` fields that are ours (display name, hosting home), which the signature does not cover.
 */
export function signedDeviceBody(userId, deviceId, extra = {}) {
  const pair = deviceKeyPair(deviceId);
  const content = {
    user_id: userId,
    device_id: deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: {
      [`curve25519:${deviceId}`]: encodeBase64(sha256(new TextEncoder().encode(`curve:${deviceId}`))),
      [`ed25519:${deviceId}`]: encodeBase64(pair.publicKey),
    },
  };
  const signature = encodeBase64(signBytes(signedBytes(content), pair.secretKey));
  return { ...content, signatures: { [userId]: { [`ed25519:${deviceId}`]: signature } }, ...extra };
}
