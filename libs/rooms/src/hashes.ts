// Content hashes and reference hashes (server-server API "Calculating the content hash for an event",
// "Calculating the reference hash for an event"; room versions 4 and later make the reference hash the
// event id). Both are sha256 over canonical JSON, differing in what is left out first.
import { canonicalJsonBytes, encodeBase64, sha256 } from '@polyhome/identity';
import { isJsonObject, own } from './json.js';
import { redactPdu } from './redaction.js';
import type { CheckResult, JsonObject, Pdu, RoomVersionId } from './types.js';

/**
 * The content hash of an event: unpadded standard base64 of sha256 over its canonical JSON without
 * `unsigned`, `signatures` and `hashes`. Throws CanonicalJsonError when the event is not canonical JSON
 * (a float, an unsafe integer, a lone surrogate).
 */
export function contentHashOf(pdu: Pdu | JsonObject): string {
  const { unsigned: _u, signatures: _s, hashes: _h, ...rest } = pdu;
  return encodeBase64(sha256(canonicalJsonBytes(rest)));
}

/**
 * Checks `hashes.sha256` against the content. The spec's answer to a mismatch is to redact the event
 * and carry on with the redacted form (not to reject it), so callers treat `content_hash_mismatch`
 * differently from other refusals. Never throws.
 */
export function checkContentHash(pdu: Pdu | JsonObject): CheckResult {
  const hashes = own(pdu, 'hashes');
  const claimed = isJsonObject(hashes) ? own(hashes, 'sha256') : undefined;
  if (typeof claimed !== 'string') {
    return {
      ok: false,
      code: 'content_hash_missing',
      message: 'The event has no hashes.sha256 string; redact it before use.',
    };
  }
  let actual: string;
  try {
    actual = contentHashOf(pdu);
  } catch (error) {
    return {
      ok: false,
      code: 'not_canonical_json',
      message: `The event is not canonical JSON: ${(error as Error).message}`,
    };
  }
  if (actual !== claimed) {
    return {
      ok: false,
      code: 'content_hash_mismatch',
      message: `hashes.sha256 is ${claimed} but the content hashes to ${actual}; the spec says to redact the event and use the redacted form.`,
    };
  }
  return { ok: true };
}

/** The reference hash: sha256 over the canonical JSON of the redacted event without `signatures` and `unsigned`. */
export function referenceHashOf(version: RoomVersionId, pdu: Pdu | JsonObject): Uint8Array {
  const { signatures: _s, unsigned: _u, ...rest } = redactPdu(version, pdu);
  return sha256(canonicalJsonBytes(rest));
}

/**
 * The event id of a PDU in room versions 10 and 11 ("Event IDs", from v4): `$` followed by the URL-safe
 * unpadded base64 of the reference hash. Stable under redaction and under changes to `unsigned` and
 * `signatures`. Throws CanonicalJsonError when the event is not canonical JSON.
 */
export function eventIdOf(version: RoomVersionId, pdu: Pdu | JsonObject): string {
  return '$' + toUrlSafe(encodeBase64(referenceHashOf(version, pdu)));
}

function toUrlSafe(base64: string): string {
  return base64.replaceAll('+', '-').replaceAll('/', '_');
}
