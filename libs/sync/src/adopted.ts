// Received ops their owner hands over (a session, which parsed them from a frame and changes them no more): they are
// deep-frozen here, so the canonical encodings made of them on arrival (to verify their signatures ahead) stay
// exactly what encoding them again would give. Validation then takes those bytes instead of encoding each op two or
// three times more, and the planner keeps the frozen op instead of a private copy. Only objects frozen here are
// looked up; anything else is encoded and copied as before. Entries go with their op (weak maps), and validation
// drops them once it has used them.
import type { CanonicalFields } from '@polyhome/identity';

/** The canonical encoding of an adopted op, made once on arrival. */
export interface AdoptedEncoding {
  readonly fields: CanonicalFields;
  /** The op's canonical JSON without `signatures` and `unsigned` (what its signature and content hash cover). */
  readonly signed: Uint8Array;
}

// Ops deep-frozen by adoptOps: they and everything in them can no longer change.
const frozen = new WeakSet<object>();
const encodings = new WeakMap<object, AdoptedEncoding>();
// The bytes a `device.put` body's self-signature covers, by body (a body inside an adopted op).
const deviceBytes = new WeakMap<object, Uint8Array>();

/** True for an op adoptOps deep-froze (it may be shared as it is). */
export function isAdopted(value: unknown): boolean {
  return typeof value === 'object' && value !== null && frozen.has(value);
}

/** The encoding made when `value` was adopted, if it was and validation has not used it yet. */
export function adoptedEncoding(value: object): AdoptedEncoding | undefined {
  return encodings.get(value);
}

/** The device-signed bytes of a body inside an adopted op, if they were made. */
export function adoptedDeviceBytes(body: object): Uint8Array | undefined {
  return deviceBytes.get(body);
}

/** Validation has used what adoption made for this op: it is not kept any longer than needed. */
export function forgetEncodings(op: object, body: unknown): void {
  encodings.delete(op);
  if (typeof body === 'object' && body !== null) deviceBytes.delete(body);
}

/** Marks an op adopted and keeps its encodings; only for a value `deepFreeze` returned true for. */
export function rememberAdopted(op: object, encoding?: AdoptedEncoding, body?: object, device?: Uint8Array): void {
  frozen.add(op);
  if (encoding !== undefined) encodings.set(op, encoding);
  if (body !== undefined && device !== undefined) deviceBytes.set(body, device);
}

/**
 * Freezes a parsed JSON value and everything in it. False (the value perhaps partly frozen) when it holds anything
 * but plain objects, plain arrays and primitives, or nests deeper than `maxDepth`.
 */
export function deepFreeze(value: unknown, maxDepth: number): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (maxDepth <= 0) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    if (proto !== Array.prototype) return false;
    for (const item of value) if (!deepFreeze(item, maxDepth - 1)) return false;
  } else {
    if (proto !== Object.prototype && proto !== null) return false;
    for (const key of Object.keys(value)) {
      if (!deepFreeze((value as Record<string, unknown>)[key], maxDepth - 1)) return false;
    }
  }
  Object.freeze(value);
  return true;
}
