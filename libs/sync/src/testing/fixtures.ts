// Deterministic fixtures for tests of the sync engine and of what is built on it (the libp2p protocol,
// the database store): an account whose root key and homes come from seeds, its signed document, and
// op factories that keep each home's seq and lamport. Same seed, same keys, same PeerIds, same bytes.
import { sha256 } from '@noble/hashes/sha2.js';
import {
  addHome,
  createAccountDocument,
  encodeBase64,
  keyPairFromSeed,
  peerIdFromPublicKey,
  removeHome,
  serverNameFromPublicKey,
  setCrossSigningMaster,
  signBytes,
  signedBytes,
  type AccountDocument,
  type Home,
  type HomeRole,
  type RevokedEntry,
  type SecretKey,
} from '@polyhome/identity';
import { createOp, opHash } from '../op.js';
import { pairKey } from '../bodies.js';
import { roomKeyKey } from '../room-keys.js';
import type { CrossSigningBody, CrossSigningUsage, DeviceBody, MemberBody, Membership, Op, OpKind } from '../types.js';

/** Fixed document timestamp, so documents made from the same seeds are byte-identical. */
export const FIXTURE_TS = 1_764_000_000_000;

/** One home of a fixture account: its key, PeerId and document entry. */
export interface FixtureHome {
  readonly peerId: string;
  readonly secretKey: SecretKey;
  readonly home: Home;
}

/** A test account: root key, server name, user id, homes and the document naming them. */
export interface FixtureAccount {
  readonly rootKey: SecretKey;
  readonly serverName: string;
  readonly userId: string;
  readonly homes: FixtureHome[];
  readonly document: AccountDocument;
}

/** Options of makeAccount. */
export interface MakeAccountOptions {
  /** Seed label of the account; different labels give unrelated keys. Default `alice`. */
  seed?: string;
  /** Localpart of the user id. Default `alice`. */
  localpart?: string;
  /** Number of homes (1 to 32). Default 3. */
  homes?: number;
  /** Role of each home; default: the first is a server, the others clients. */
  roles?: HomeRole[];
}

/** A 32-byte seed derived from a label: sha256(`polyhome-test:<label>`). */
export function seedFrom(label: string): Uint8Array {
  return sha256(new TextEncoder().encode(`polyhome-test:${label}`));
}

/** The key of a home made from a seed label, with its PeerId. */
export function makeHome(label: string, role: HomeRole = 'client', name = label.slice(-60) || 'home'): FixtureHome {
  const { secretKey, publicKey } = keyPairFromSeed(seedFrom(label));
  const peerId = peerIdFromPublicKey(publicKey);
  return { peerId, secretKey, home: { peer_id: peerId, role, name, addrs: [] } };
}

/** An account with `homes` homes and its document (seq = number of homes: one addHome per extra home). */
export function makeAccount(options: MakeAccountOptions = {}): FixtureAccount {
  const seed = options.seed ?? 'alice';
  const count = options.homes ?? 3;
  const rootKey = keyPairFromSeed(seedFrom(`${seed}:root`)).secretKey;
  const homes: FixtureHome[] = [];
  for (let i = 0; i < count; i++) {
    const role = options.roles?.[i] ?? (i === 0 ? 'server' : 'client');
    homes.push(makeHome(`${seed}:home:${i}`, role, `home-${i}`));
  }
  const [first, ...rest] = homes;
  if (first === undefined) throw new RangeError('an account needs at least one home');
  let document = createAccountDocument(
    { localpart: options.localpart ?? 'alice', rootKey, home: first.home },
    { ts: FIXTURE_TS },
  );
  for (const h of rest) document = addHome(document, h.home, rootKey, { ts: FIXTURE_TS });
  const serverName = serverNameFromPublicKey(rootKey.publicKey);
  return { rootKey, serverName, userId: document.user_id, homes, document };
}

/** The next document of a fixture account with one more home (made from a seed label). */
export function withHome(account: FixtureAccount, document: AccountDocument, home: FixtureHome): AccountDocument {
  return addHome(document, home.home, account.rootKey, { ts: FIXTURE_TS });
}

/** The next document of a fixture account with a home revoked after `cutoff` (a bare seq, or a pin). */
export function withoutHome(
  account: FixtureAccount,
  document: AccountDocument,
  peerId: string,
  cutoff: RevokedEntry,
): AccountDocument {
  return removeHome(document, peerId, cutoff, account.rootKey, { ts: FIXTURE_TS });
}

/**
 * A Matrix DeviceKeys body for `device.put`: the device's Ed25519 key comes from a seed derived from its id, and the
 * body is self-signed by it (op validation checks that), so the same id gives the same bytes.
 */
export function deviceBody(
  account: Pick<FixtureAccount, 'userId'>,
  deviceId: string,
  extra: Partial<DeviceBody> = {},
): DeviceBody {
  const fake = encodeBase64(sha256(new TextEncoder().encode(deviceId)));
  const device = deviceKey(deviceId);
  const keys = { [`curve25519:${deviceId}`]: fake, [`ed25519:${deviceId}`]: encodeBase64(device.publicKey) };
  const content = {
    user_id: account.userId,
    device_id: deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys,
  };
  const signature = encodeBase64(signBytes(signedBytes(content), device));
  return { ...content, signatures: { [account.userId]: { [`ed25519:${deviceId}`]: signature } }, ...extra };
}

/** The Ed25519 key of a fixture device (from a seed derived from its id). */
export function deviceKey(deviceId: string): SecretKey {
  return keyPairFromSeed(sha256(new TextEncoder().encode(`device:${deviceId}`))).secretKey;
}

/** A `member.set` body. */
export function memberBody(roomId: string, membership: Membership): MemberBody {
  return { room_id: roomId, membership };
}

/** A Matrix CrossSigningKey body for `cross_signing.put`. */
export function crossSigningBody(account: FixtureAccount, usage: CrossSigningUsage, variant = 0): CrossSigningBody {
  const key = encodeBase64(sha256(new TextEncoder().encode(`${usage}:${variant}`)));
  return { user_id: account.userId, usage: [usage], keys: { [`ed25519:${key}`]: key } };
}

/** A real cross-signing key set: the master key (unpadded base64) and the body of each key, the others signed by it. */
export interface CrossSigningKeySet {
  master: string;
  bodies: Record<CrossSigningUsage, CrossSigningBody>;
  /** The secret key of each usage (what signs devices, other users' master keys, the other keys). */
  secretKeys: Record<CrossSigningUsage, SecretKey>;
}

/**
 * Cross-signing keys from a seed label, as a Matrix client makes them: Ed25519 keys, the self-signing and
 * user-signing keys signed by the master key (by `signer` instead, to forge them).
 */
export function crossSigningKeys(
  account: Pick<FixtureAccount, 'userId'>,
  label: string,
  signer = label,
): CrossSigningKeySet {
  const pair = (usage: string, from = label) => keyPairFromSeed(seedFrom(`${account.userId}:${from}:${usage}`));
  const publicOf = (usage: string) => encodeBase64(pair(usage).publicKey);
  const master = publicOf('master');
  const signingKey = pair('master', signer).secretKey;
  const body = (usage: CrossSigningUsage): CrossSigningBody => {
    const key = publicOf(usage);
    const unsigned = { user_id: account.userId, usage: [usage], keys: { [`ed25519:${key}`]: key } };
    if (usage === 'master') return unsigned;
    const signature = encodeBase64(signBytes(signedBytes(unsigned), signingKey));
    return {
      ...unsigned,
      signatures: { [account.userId]: { [`ed25519:${encodeBase64(pair('master', signer).publicKey)}`]: signature } },
    };
  };
  return {
    master,
    bodies: { master: body('master'), self_signing: body('self_signing'), user_signing: body('user_signing') },
    secretKeys: {
      master: pair('master').secretKey,
      self_signing: pair('self_signing').secretKey,
      user_signing: pair('user_signing').secretKey,
    },
  };
}

/** The next document of a fixture account naming `master` as its cross-signing master key. */
export function withCrossSigningMaster(
  account: FixtureAccount,
  document: AccountDocument,
  master: string,
): AccountDocument {
  return setCrossSigningMaster(document, master, account.rootKey, { ts: FIXTURE_TS });
}

/** A key and body for an op of one kind. */
export interface KindSample {
  key: string;
  body: Record<string, unknown>;
}

/**
 * One valid op of every kind of the registry, for tests that must cover them all: a kind without a sample
 * does not compile. Kinds of one namespace share their key, so a tombstone's sample hides that namespace's put.
 */
export const KIND_SAMPLES: { readonly [K in OpKind]: (account: FixtureAccount) => KindSample } = {
  'device.put': (account) => ({
    key: 'SAMPLE',
    body: { ...deviceBody(account, 'SAMPLE', { display_name: 'Sample' }) },
  }),
  'device.delete': () => ({ key: 'SAMPLE', body: {} }),
  'member.set': () => ({ key: '!sample:x', body: { ...memberBody('!sample:x', 'invite') } }),
  'cross_signing.put': (account) => ({ key: 'self_signing', body: { ...crossSigningBody(account, 'self_signing') } }),
  'account_data.put': () => ({ key: 'm.direct', body: { type: 'm.direct', content_json: '{"@bob:x":["!sample:x"]}' } }),
  'room_account_data.put': () => ({
    key: pairKey('!sample:x', 'm.tag'),
    body: { room_id: '!sample:x', type: 'm.tag', content_json: '{"tags":{"m.favourite":{"order":0.5}}}' },
  }),
  'profile.set': () => ({ key: 'displayname', body: { displayname: 'Sample' } }),
  'push_rule.put': () => ({
    key: pairKey('override', 'sample'),
    body: { kind: 'override', rule_id: 'sample', actions: ['notify'], conditions: [], enabled: true, position: 1 },
  }),
  'push_rule.delete': () => ({ key: pairKey('override', 'sample'), body: {} }),
  'password.set': () => ({ key: 'verifier', body: { verifier: SAMPLE_VERIFIER } }),
  'room_keys.version.put': () => ({
    key: '1-0a1b2c3d',
    body: { algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2', auth_data_json: '{"public_key":"sample"}' },
  }),
  'room_keys.version.delete': () => ({ key: '1-0a1b2c3d', body: {} }),
  'room_keys.key.put': () => ({
    key: roomKeyKey('1-0a1b2c3d', '!sample:x', 'sample-session'),
    body: {
      version: '1-0a1b2c3d',
      room_id: '!sample:x',
      session_id: 'sample-session',
      first_message_index: 0,
      forwarded_count: 0,
      is_verified: true,
      session_data_json: '{"ciphertext":"sample","ephemeral":"e","mac":"m"}',
    },
  }),
  'room_keys.key.delete': () => ({ key: roomKeyKey('1-0a1b2c3d', '!sample:x', 'sample-session'), body: {} }),
};

/** An scrypt verifier of the password "sample password" (N 2^14, r 8, p 1). */
export const SAMPLE_VERIFIER = 'scrypt$16384$8$1$c2FtcGxlIHNhbHQgMTIzNA==$TY726howaOn0Pf299lf6GnpQYNrW77LA2+fQeRtlDZg=';

/** Per-home op factory: keeps the home's next seq and lamport so ops come out as that home would make them. */
export class OpWriter {
  /** Seq of the next op. */
  seq = 1;
  /** Lamport of the next op (raise it with observe() to follow other homes). */
  lamport = 1;
  /** doc_seq stamped on ops. */
  docSeq: number;
  /** ts stamped on ops; advanced by one per op for determinism. */
  ts = FIXTURE_TS;

  constructor(
    readonly account: FixtureAccount,
    readonly home: FixtureHome,
    docSeq = account.document.seq,
  ) {
    this.docSeq = docSeq;
  }

  /** Raises the lamport clock past a lamport seen elsewhere. */
  observe(lamport: number): this {
    this.lamport = Math.max(this.lamport, lamport + 1);
    return this;
  }

  /** Makes the next op of any kind. */
  make(op: OpKind, key: string, body: Record<string, unknown>, overrides: Partial<Op> = {}): Op {
    const made = createOp(
      {
        account: this.account.serverName,
        origin: this.home.peerId,
        seq: this.seq,
        lamport: this.lamport,
        doc_seq: this.docSeq,
        ts: this.ts,
        op,
        key,
        body,
        ...overrides,
      },
      this.home.secretKey,
      { userId: this.account.userId },
    );
    this.seq = made.seq + 1;
    this.lamport = made.lamport + 1;
    this.ts += 1;
    return made;
  }

  /** The next op of a kind, with its sample key and body (KIND_SAMPLES). */
  sample(kind: OpKind): Op {
    const { key, body } = KIND_SAMPLES[kind](this.account);
    return this.make(kind, key, body);
  }

  /** The next `device.put`. */
  devicePut(deviceId: string, extra: Partial<DeviceBody> = {}): Op {
    return this.make('device.put', deviceId, { ...deviceBody(this.account, deviceId, extra) });
  }

  /** The next `device.delete` (tombstone). */
  deviceDelete(deviceId: string): Op {
    return this.make('device.delete', deviceId, {});
  }

  /** The next `member.set`. */
  memberSet(roomId: string, membership: Membership): Op {
    return this.make('member.set', roomId, { ...memberBody(roomId, membership) });
  }

  /** The next `cross_signing.put`. */
  crossSigningPut(usage: CrossSigningUsage, variant = 0): Op {
    return this.make('cross_signing.put', usage, { ...crossSigningBody(this.account, usage, variant) });
  }
}

/**
 * What a revoked home that still has its key can do: sign another version of an old slot, with a huge lamport
 * and its content hash ground below every hash in `below` (by varying `ts`: the hash leaves the signature out,
 * so each try costs one hash, and only the winner is signed). Throws if no try in `tries` gets below.
 */
export function groundOp(
  writer: OpWriter,
  seq: number,
  deviceId: string,
  below: readonly string[],
  tries = 1 << 16,
): Op {
  const floor = below.reduce((a, b) => (b < a ? b : a), 'g');
  const content: Omit<Op, 'signatures'> = {
    type: 'polyhome.op',
    account: writer.account.serverName,
    origin: writer.home.peerId,
    seq,
    lamport: 2 ** 40,
    doc_seq: writer.docSeq,
    ts: FIXTURE_TS,
    op: 'device.put',
    key: deviceId,
    body: { ...deviceBody(writer.account, deviceId, { display_name: 'rogue' }) },
  };
  for (let i = 0; i < tries; i++) {
    const candidate = { ...content, ts: FIXTURE_TS + i };
    if (opHash({ ...candidate, signatures: {} }) < floor) {
      return createOp(candidate, writer.home.secretKey, { userId: writer.account.userId });
    }
  }
  throw new Error(`no hash below ${floor.slice(0, 8)} in ${tries} tries`);
}

/** One OpWriter per home of a fixture account. */
export function writers(account: FixtureAccount): OpWriter[] {
  return account.homes.map((home) => new OpWriter(account, home));
}
