// What attackers send, shared by the fault tests and the soak: fresh PeerIds made cheaply, and big ops.
import { generateKeyPairSync } from 'node:crypto';
import { base58btc } from 'multiformats/bases/base58';

/** The identity multihash prefix of an Ed25519 PeerId (protobuf key type 1, 32 bytes). */
const PEER_ID_PREFIX = Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);

/** `n` PeerIds of fresh, valid Ed25519 keys (node's native key generation: the attacker's cost is small). */
export function freshPeerIds(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    const key = Buffer.from(String(jwk.x), 'base64url');
    const bytes = new Uint8Array(PEER_ID_PREFIX.length + key.length);
    bytes.set(PEER_ID_PREFIX);
    bytes.set(key, PEER_ID_PREFIX.length);
    out.push(base58btc.baseEncode(bytes));
  }
  return out;
}

/** A `member.set` body carrying a membership event with a large content: a big op, as an attacker would send. */
export function bigMembership(userId: string, roomId: string, padding = 12_000): Record<string, unknown> {
  const content = { membership: 'join', padding: 'x'.repeat(padding) };
  return {
    room_id: roomId,
    membership: 'join',
    event: { type: 'm.room.member', room_id: roomId, state_key: userId, content },
  };
}

/** A JSON body nested `depth` levels deep (`{"a":[[...1...]]}`, two bytes a level), as text. */
export function deepJson(depth: number): string {
  return `{"a":${'['.repeat(depth - 1)}1${']'.repeat(depth - 1)}}`;
}
