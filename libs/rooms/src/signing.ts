// Signing and verifying PDUs (server-server API "Signing events", "Validating hashes and signatures on
// received events"). The signature covers the redacted event, so it survives redaction; the content hash
// inside it pins the full content. Who a server is and which keys it holds is the resolver's business:
// in polyhome a server name is an account key and key ids name homes, and nothing here depends on that.
import { signJson, verifyJson, type SecretKey } from '@polyhome/identity';
import { contentHashOf } from './hashes.js';
import { isJsonObject, own, serverNameOf } from './json.js';
import { redactPdu } from './redaction.js';
import type { CheckResult, JsonObject, Pdu, RoomVersionId } from './types.js';

/** A PDU before hashing and signing: every field but `hashes` and `signatures` (what build.ts makes). */
export type UnsignedPdu = { [K in keyof Pdu as K extends 'hashes' | 'signatures' ? never : K]: Pdu[K] };

/** The key a PDU is signed with. */
export interface SigningIdentity {
  /** The signing server's name (in polyhome the account's 64-hex key). */
  serverName: string;
  /** `ed25519:<version>` (in polyhome `ed25519:<PeerId>` or `ed25519:root`). */
  keyId: string;
  secretKey: SecretKey;
}

/** Finds the public key of `keyId` of `serverName`, or undefined when it is not known or not valid. */
export type ResolveKey = (serverName: string, keyId: string) => Uint8Array | undefined;

/**
 * Adds the content hash and a signature to a PDU: hash the event, redact the hashed event, sign the
 * redacted form, copy the signature over. Returns a new object. Throws CanonicalJsonError when the event
 * is not canonical JSON, InvalidKeyIdError or InvalidServerNameError for a bad identity.
 */
export function signPdu(version: RoomVersionId, pdu: UnsignedPdu, identity: SigningIdentity): Pdu {
  const hashed = { ...pdu, hashes: { sha256: contentHashOf(pdu) } } as JsonObject;
  return addSignature(version, { ...hashed, signatures: {} } as Pdu, identity);
}

/**
 * Adds one more server's signature to an already hashed PDU (a restricted join is countersigned by the
 * authorising server). Existing signatures are kept. Throws as signPdu.
 */
export function addSignature(version: RoomVersionId, pdu: Pdu, identity: SigningIdentity): Pdu {
  const signed = signJson(redactPdu(version, pdu), identity.serverName, identity.keyId, identity.secretKey);
  return { ...pdu, signatures: signed.signatures as Pdu['signatures'] };
}

/**
 * The servers whose signatures a PDU must carry: the sender's server and, for an `m.room.member` event
 * with `join_authorised_via_users_server`, that user's server (auth rule 4.2 asks it of every membership
 * event carrying the key; Synapse asks it of joins only, and a home that follows the rule asks for more,
 * never less). Third-party invite signatures are checked by the auth rules.
 */
export function requiredSigners(_version: RoomVersionId, pdu: Pdu): string[] {
  const servers = new Set<string>();
  const sender = serverNameOf(pdu.sender);
  if (sender !== undefined) servers.add(sender);
  if (pdu.type === 'm.room.member') {
    const authoriser = own(pdu.content, 'join_authorised_via_users_server');
    const server = typeof authoriser === 'string' ? serverNameOf(authoriser) : undefined;
    if (server !== undefined) servers.add(server);
  }
  return [...servers];
}

/** Work bound: key ids tried per required server. */
const MAX_KEYS_PER_SERVER = 8;

/**
 * Checks that each server `requiredSigners` names has signed the redacted PDU with at least one key the
 * resolver knows. A server without a usable signature refuses the event (`signature_missing`,
 * `unknown_key`, `signature_invalid`). Never throws; the content hash is checked separately
 * (checkContentHash), because a mismatch means redact, not reject.
 */
export function verifyPduSignatures(version: RoomVersionId, pdu: Pdu, resolveKey: ResolveKey): CheckResult {
  if (serverNameOf(pdu.sender) === undefined) {
    return { ok: false, code: 'invalid_sender', message: `The sender ${pdu.sender} has no server name.` };
  }
  let redacted: JsonObject;
  try {
    redacted = redactPdu(version, pdu);
  } catch (error) {
    return { ok: false, code: 'not_canonical_json', message: (error as Error).message };
  }
  const signatures: unknown = own(pdu, 'signatures');
  for (const server of requiredSigners(version, pdu)) {
    const byServer = isJsonObject(signatures) ? own(signatures, server) : undefined;
    const keyIds = isJsonObject(byServer) ? Object.keys(byServer).filter((id) => id.startsWith('ed25519:')) : [];
    if (keyIds.length === 0) {
      return { ok: false, code: 'signature_missing', message: `The event carries no ed25519 signature by ${server}.` };
    }
    let outcome: CheckResult = {
      ok: false,
      code: 'unknown_key',
      message: `None of the keys ${server} signed with (${keyIds.slice(0, MAX_KEYS_PER_SERVER).join(', ')}) is known; fetch the server's keys and retry.`,
    };
    for (const keyId of keyIds.slice(0, MAX_KEYS_PER_SERVER)) {
      const publicKey = resolveKey(server, keyId);
      if (publicKey === undefined) continue;
      try {
        verifyJson(redacted, server, keyId, publicKey);
        outcome = { ok: true };
        break;
      } catch (error) {
        outcome = {
          ok: false,
          code: 'signature_invalid',
          message: `The signature of ${server} with ${keyId} does not verify: ${(error as Error).message}`,
        };
      }
    }
    if (!outcome.ok) return outcome;
  }
  return { ok: true };
}
