// Signatures on Matrix end-to-end keys (spec "Signing JSON", "Device keys", "Cross-signing"). One rule in one
// place: the client API checks uploads with it, op validation checks every replicated `device.put` with it, so a
// key a home could not verify never becomes state on any home.
import { decodeBase64, signedBytes, verifyBytes, type Ed25519Options } from '@polyhome/identity';
import { adoptedDeviceBytes } from './adopted.js';

/** Fields of a `device.put` body that are ours (not in the DeviceKeys object the device signed). */
const LOCAL_DEVICE_FIELDS = ['display_name', 'home'];

/**
 * The bytes a device's keys are signed over: the canonical JSON of the DeviceKeys object (`user_id`, `device_id`,
 * `algorithms`, `keys`) without `signatures`, `unsigned` and our own fields (display name, hosting home).
 */
export function deviceSignedBytes(body: object): Uint8Array {
  // A body inside an adopted op (deep-frozen) had them made on arrival.
  const adopted = adoptedDeviceBytes(body);
  if (adopted !== undefined) return adopted;
  const content: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(body)) if (!LOCAL_DEVICE_FIELDS.includes(field)) content[field] = value;
  return signedBytes(content);
}

/**
 * Whether `object.signatures[userId][keyId]` is a valid Ed25519 signature over `bytes` by `publicKey` (unpadded
 * base64). A malformed signature or key is an invalid signature, never an exception.
 */
export function hasValidSignature(
  object: { signatures?: unknown },
  bytes: Uint8Array,
  userId: string,
  keyId: string,
  publicKey: string,
  options?: Ed25519Options,
): boolean {
  const signatures = object.signatures;
  if (typeof signatures !== 'object' || signatures === null) return false;
  const byUser: unknown = Object.hasOwn(signatures, userId)
    ? (signatures as Record<string, unknown>)[userId]
    : undefined;
  if (typeof byUser !== 'object' || byUser === null || !Object.hasOwn(byUser, keyId)) return false;
  const text: unknown = (byUser as Record<string, unknown>)[keyId];
  if (typeof text !== 'string') return false;
  try {
    return verifyBytes(decodeBase64(text), bytes, decodeBase64(publicKey), options);
  } catch {
    return false;
  }
}

/**
 * Why a device's keys (a `device.put` body, or `/keys/upload` `device_keys`) are not self-signed, or undefined
 * when they are: the body must hold its Ed25519 key `ed25519:<device_id>`, and a valid signature by it under
 * `signatures[user_id]["ed25519:<device_id>"]` (spec "Device keys"). A device without keys (just logged in) has
 * nothing to sign: callers skip it.
 */
export function deviceSignatureRefusal(
  body: { user_id: string; device_id: string; keys: Record<string, string>; signatures?: unknown },
  options?: Ed25519Options,
): string | undefined {
  const keyId = `ed25519:${body.device_id}`;
  const key = Object.hasOwn(body.keys, keyId) ? body.keys[keyId] : undefined;
  if (key === undefined) return `the device keys hold no Ed25519 key ${keyId}`;
  if (!hasValidSignature(body, deviceSignedBytes(body), body.user_id, keyId, key, options)) {
    return `the device keys carry no valid self-signature signatures[${body.user_id}][${keyId}] by that key`;
  }
  return undefined;
}
