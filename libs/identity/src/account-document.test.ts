import { describe, expect, it } from 'vitest';
import {
  acceptDocument,
  ACCOUNT_DOCUMENT_LIMITS,
  addHome,
  chooseDocument,
  createAccountDocument,
  homeStatus,
  removeHome,
  revokedCutoff,
  setCrossSigningMaster,
  updateHome,
  validateAccountDocument,
  verifyAccountDocument,
  type AccountDocument,
  type Home,
} from './account-document.js';
import {
  AccountMismatchError,
  DocumentLimitError,
  EquivocationError,
  HomeExistsError,
  HomeNotFoundError,
  HomeRevokedError,
  InvalidDocumentError,
  LastHomeError,
  RollbackError,
  RootKeyMismatchError,
  SignatureInvalidError,
  SignatureMissingError,
  WrongTypeError,
} from './errors.js';
import { peerIdFromPublicKey, ROOT_KEY_ID, serverNameFromPublicKey } from './ids.js';
import { generateKeyPair } from './keys.js';
import { encodeBase64 } from './encoding.js';
import { signTyped } from './signing.js';

const root = generateKeyPair();
const serverName = serverNameFromPublicKey(root.publicKey);
const newPeerId = () => peerIdFromPublicKey(generateKeyPair().publicKey);
const home = (name: string, role: Home['role'] = 'client', addrs: string[] = []): Home => ({
  peer_id: newPeerId(),
  role,
  name,
  addrs,
});
const companion = home('companion', 'server', ['/ip4/127.0.0.1/tcp/4001']);
const laptop = home('laptop');
const ts = 1764000000000;

function firstDocument(): AccountDocument {
  return createAccountDocument({ localpart: 'alice', rootKey: root.secretKey, home: companion }, { ts });
}

describe('account document lifecycle', () => {
  it('creates seq 1 with the first home, in exactly the DESIGN.md shape', () => {
    const doc = firstDocument();
    expect(doc).toEqual({
      type: 'polyhome.account',
      user_id: `@alice:${serverName}`,
      seq: 1,
      homes: [companion],
      revoked: {},
      ts,
      signatures: { [serverName]: { [ROOT_KEY_ID]: expect.stringMatching(/^[A-Za-z0-9+/]{86}$/) as unknown } },
    });
    expect(verifyAccountDocument(doc)).toBe(doc);
    expect(verifyAccountDocument(JSON.parse(JSON.stringify(doc)), { expectedServerName: serverName })).toEqual(doc);
  });

  it('adds, updates and removes homes, each a new signed version', () => {
    const v1 = firstDocument();
    const v2 = addHome(v1, laptop, root.secretKey, { ts: ts + 1 });
    expect(v2.seq).toBe(2);
    expect(v2.homes.map((h) => h.name)).toEqual(['companion', 'laptop']);
    verifyAccountDocument(v2);

    const moved = { ...companion, addrs: ['/ip4/10.0.0.2/tcp/4001'] };
    const v3 = updateHome(v2, moved, root.secretKey, { ts: ts + 2 });
    expect(v3.homes[0]).toEqual(moved);
    verifyAccountDocument(v3);

    const v4 = removeHome(v3, laptop.peer_id, 41, root.secretKey, { ts: ts + 3 });
    expect(v4.seq).toBe(4);
    expect(v4.homes).toEqual([moved]);
    expect(v4.revoked).toEqual({ [laptop.peer_id]: 41 });
    verifyAccountDocument(v4);
    expect(homeStatus(v4, laptop.peer_id)).toEqual({ kind: 'revoked', lastAcceptedSeq: 41 });
    expect(homeStatus(v4, companion.peer_id)).toEqual({ kind: 'home', home: moved });
    expect(homeStatus(v4, newPeerId())).toEqual({ kind: 'unknown' });
    // Inputs are never mutated.
    expect(v1.seq).toBe(1);
    expect(v1.homes).toHaveLength(1);
  });

  it("pins a revoked home's log by its digest, and refuses a pin that is not one", () => {
    const v2 = addHome(firstDocument(), laptop, root.secretKey);
    const pin = { seq: 7, digest: 'ab'.repeat(16) };
    const v3 = removeHome(v2, laptop.peer_id, pin, root.secretKey);
    expect(verifyAccountDocument(v3).revoked).toEqual({ [laptop.peer_id]: pin });
    expect(homeStatus(v3, laptop.peer_id)).toEqual({ kind: 'revoked', lastAcceptedSeq: 7, pinnedDigest: pin.digest });
    expect(revokedCutoff(v3.revoked[laptop.peer_id]!)).toBe(7);
    for (const bad of [
      { seq: 7, digest: 'AB'.repeat(16) },
      { seq: 7, digest: 'ab'.repeat(32) },
      { seq: -1, digest: pin.digest },
      { seq: 7 },
    ]) {
      expect(() => removeHome(v2, laptop.peer_id, bad as never, root.secretKey)).toThrow(InvalidDocumentError);
    }
    const extra = { ...v3, revoked: { [laptop.peer_id]: { ...pin, extra: 1 } } };
    expect(() => validateAccountDocument(extra)).toThrow(InvalidDocumentError);
  });

  it('names the cross-signing master key, carries it to later versions, and refuses one that is not a key', () => {
    const master = encodeBase64(generateKeyPair().publicKey);
    const v2 = setCrossSigningMaster(firstDocument(), master, root.secretKey);
    expect(verifyAccountDocument(v2).cross_signing).toEqual({ master });
    expect(addHome(v2, laptop, root.secretKey).cross_signing).toEqual({ master });
    expect(firstDocument().cross_signing).toBeUndefined();
    for (const bad of [master + '=', master.slice(1), 'A'.repeat(42) + 'B', '']) {
      expect(() => setCrossSigningMaster(v2, bad, root.secretKey)).toThrow(InvalidDocumentError);
    }
    expect(() => validateAccountDocument({ ...v2, cross_signing: { master, extra: 1 } })).toThrow(InvalidDocumentError);
  });

  it('refuses impossible changes with their own errors', () => {
    const v1 = firstDocument();
    expect(() => addHome(v1, companion, root.secretKey)).toThrow(HomeExistsError);
    expect(() => removeHome(v1, companion.peer_id, 0, root.secretKey)).toThrow(LastHomeError);
    expect(() => removeHome(v1, laptop.peer_id, 0, root.secretKey)).toThrow(HomeNotFoundError);
    expect(() => updateHome(v1, laptop, root.secretKey)).toThrow(HomeNotFoundError);
    const v2 = addHome(v1, laptop, root.secretKey);
    const v3 = removeHome(v2, laptop.peer_id, 3, root.secretKey);
    expect(() => addHome(v3, laptop, root.secretKey)).toThrow(HomeRevokedError);
    expect(() => addHome(v1, laptop, generateKeyPair().secretKey)).toThrow(RootKeyMismatchError);
    expect(() => addHome(v1, { ...laptop, peer_id: 'nope' }, root.secretKey)).toThrow(InvalidDocumentError);
    expect(() => removeHome(v2, laptop.peer_id, -1, root.secretKey)).toThrow(InvalidDocumentError);
  });
});

describe('verification refuses', () => {
  const doc = addHome(firstDocument(), laptop, root.secretKey, { ts });

  it('a document with an extra home not signed', () => {
    const tampered = { ...doc, homes: [...doc.homes, home('intruder', 'server')] };
    expect(() => verifyAccountDocument(tampered)).toThrow(SignatureInvalidError);
  });

  it('any change to a signed field', () => {
    for (const change of [{ seq: 3 }, { ts: ts + 1 }, { revoked: { [newPeerId()]: 1 } }]) {
      expect(() => verifyAccountDocument({ ...doc, ...change })).toThrow(SignatureInvalidError);
    }
  });

  it('a document signed by another key claiming this account', () => {
    const mallory = generateKeyPair();
    const forged = signTyped(
      { ...doc, signatures: {} },
      'polyhome.account',
      serverName,
      ROOT_KEY_ID,
      mallory.secretKey,
    );
    expect(() => verifyAccountDocument(forged)).toThrow(SignatureInvalidError);
  });

  it('a document with no root signature', () => {
    expect(() => verifyAccountDocument({ ...doc, signatures: {} })).toThrow(SignatureMissingError);
    const homeSigned = { ...doc, signatures: { [serverName]: { [`ed25519:${laptop.peer_id}`]: 'x'.repeat(86) } } };
    expect(() => verifyAccountDocument(homeSigned)).toThrow(SignatureMissingError);
  });

  it('a signature from another type (an op presented as an account document)', () => {
    const op = signTyped(
      { type: 'polyhome.op', account: serverName, origin: laptop.peer_id, seq: 1 },
      'polyhome.op',
      serverName,
      ROOT_KEY_ID,
      root.secretKey,
    );
    expect(() => verifyAccountDocument(op)).toThrow(WrongTypeError);
    expect(() => verifyAccountDocument({ ...doc, type: 'polyhome.op' })).toThrow(WrongTypeError);
  });

  it('a document for another account than expected', () => {
    expect(() => verifyAccountDocument(doc, { expectedServerName: 'b'.repeat(64) })).toThrow(AccountMismatchError);
    expect(() => verifyAccountDocument(doc, { expectedUserId: `@bob:${serverName}` })).toThrow(AccountMismatchError);
  });
});

describe('structure validation', () => {
  const doc = addHome(firstDocument(), laptop, root.secretKey, { ts });
  const withHome = (patch: Record<string, unknown>) => ({ ...doc, homes: [{ ...doc.homes[0], ...patch }] });

  it.each<[string, unknown, string]>([
    ['an unknown top-level field', { ...doc, extra: 1 }, '$.extra'],
    ['unsigned', { ...doc, unsigned: {} }, '$.unsigned'],
    ['a missing field', (({ ts: _ts, ...rest }) => rest)(doc), '$.ts'],
    ['an unknown home field', withHome({ port: 1 }), '$.homes[0].port'],
    ['a bad user ID', { ...doc, user_id: '@Alice:' + serverName }, '$.user_id'],
    ['a DNS user ID', { ...doc, user_id: '@alice:example.org' }, '$.user_id'],
    ['seq 0', { ...doc, seq: 0 }, '$.seq'],
    ['a float seq', { ...doc, seq: 1.5 }, '$.seq'],
    ['a string seq', { ...doc, seq: '2' }, '$.seq'],
    ['a negative ts', { ...doc, ts: -1 }, '$.ts'],
    ['no homes', { ...doc, homes: [] }, '$.homes'],
    ['an invalid PeerId', withHome({ peer_id: '12D3KooWnope' }), '$.homes[0].peer_id'],
    ['a duplicate home', { ...doc, homes: [doc.homes[0], doc.homes[0]] }, '$.homes[1].peer_id'],
    ['a bad role', withHome({ role: 'admin' }), '$.homes[0].role'],
    ['an empty name', withHome({ name: '' }), '$.homes[0].name'],
    ['a control character in a name', withHome({ name: 'a\nb' }), '$.homes[0].name'],
    ['an addr that is not a multiaddr', withHome({ addrs: ['127.0.0.1:4001'] }), '$.homes[0].addrs[0]'],
    ['addrs not an array', withHome({ addrs: '/ip4/1.2.3.4' }), '$.homes[0].addrs'],
    ['a revoked key that is not a PeerId', { ...doc, revoked: { nope: 1 } }, '$.revoked'],
    ['a current home also revoked', { ...doc, revoked: { [laptop.peer_id]: 1 } }, '$.revoked'],
    ['a negative revocation cutoff', { ...doc, revoked: { [newPeerId()]: -1 } }, '$.revoked'],
    ['signatures not an object', { ...doc, signatures: [] }, '$.signatures'],
    ['an array', [doc], '$'],
  ])('refuses %s', (_what, value, path) => {
    let caught: unknown;
    try {
      validateAccountDocument(value);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidDocumentError);
    expect((caught as InvalidDocumentError).path.startsWith(path)).toBe(true);
  });

  it.each<[string, () => unknown, string]>([
    [
      'too many homes',
      () => ({ ...doc, homes: Array.from({ length: ACCOUNT_DOCUMENT_LIMITS.maxHomes + 1 }, () => home('h')) }),
      'maxHomes',
    ],
    [
      'a long name',
      () => withHome({ name: 'x'.repeat(ACCOUNT_DOCUMENT_LIMITS.maxHomeNameLength + 1) }),
      'maxHomeNameLength',
    ],
    [
      'too many addrs',
      () =>
        withHome({ addrs: Array.from({ length: ACCOUNT_DOCUMENT_LIMITS.maxAddrs + 1 }, (_, i) => `/ip4/10.0.0.${i}`) }),
      'maxAddrs',
    ],
    [
      'a long addr',
      () => withHome({ addrs: ['/' + 'a'.repeat(ACCOUNT_DOCUMENT_LIMITS.maxAddrLength)] }),
      'maxAddrLength',
    ],
    [
      'too many revoked homes',
      () => ({
        ...doc,
        revoked: Object.fromEntries(
          Array.from({ length: ACCOUNT_DOCUMENT_LIMITS.maxRevoked + 1 }, (_, i) => [`x${i}`, 1]),
        ),
      }),
      'maxRevoked',
    ],
    [
      'too many signers',
      () => ({
        ...doc,
        signatures: Object.fromEntries(
          Array.from({ length: ACCOUNT_DOCUMENT_LIMITS.maxSignatureServers + 1 }, (_, i) => [`s${i}`, {}]),
        ),
      }),
      'maxSignatureServers',
    ],
    [
      'a document over the byte cap',
      () => ({
        ...doc,
        homes: Array.from({ length: ACCOUNT_DOCUMENT_LIMITS.maxHomes }, () =>
          home(
            'n'.repeat(64),
            'server',
            Array.from({ length: ACCOUNT_DOCUMENT_LIMITS.maxAddrs }, () => '/' + 'a'.repeat(255)),
          ),
        ),
      }),
      'maxDocumentBytes',
    ],
  ])('refuses %s with a limit error', (_what, make, limit) => {
    let caught: unknown;
    try {
      validateAccountDocument(make());
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DocumentLimitError);
    expect((caught as DocumentLimitError).limit).toBe(limit);
  });

  it('counts name length in code points', () => {
    validateAccountDocument(withHome({ name: '\u{1f600}'.repeat(ACCOUNT_DOCUMENT_LIMITS.maxHomeNameLength) }));
  });
});

describe('choosing between documents', () => {
  const v1 = firstDocument();
  const v2 = addHome(v1, laptop, root.secretKey, { ts: ts + 1 });
  const v2other = addHome(v1, home('phone'), root.secretKey, { ts: ts + 1 });

  it('accepts the first and any higher seq', () => {
    expect(chooseDocument(undefined, v1)).toEqual({ kind: 'accept', document: v1 });
    expect(chooseDocument(v1, v2)).toEqual({ kind: 'accept', document: v2 });
    expect(acceptDocument(v1, v2)).toBe(v2);
  });

  it('keeps the held document when the same one arrives again', () => {
    expect(chooseDocument(v2, JSON.parse(JSON.stringify(v2)) as AccountDocument)).toEqual({
      kind: 'keep',
      document: v2,
    });
    // Extra signatures do not make it a different document.
    const cosigned = { ...v2, signatures: { ...v2.signatures, other: { 'ed25519:x': 'y' } } };
    expect(chooseDocument(v2, cosigned).kind).toBe('keep');
    expect(acceptDocument(v2, cosigned)).toBe(v2);
  });

  it('reports a rolled-back document', () => {
    expect(chooseDocument(v2, v1)).toEqual({ kind: 'rollback', document: v2, stale: v1 });
    expect(() => acceptDocument(v2, v1)).toThrow(RollbackError);
  });

  it('reports an equivocating pair and keeps the held one', () => {
    verifyAccountDocument(v2other);
    expect(chooseDocument(v2, v2other)).toEqual({ kind: 'equivocation', document: v2, conflicting: v2other });
    expect(() => acceptDocument(v2, v2other)).toThrow(EquivocationError);
    expect(() => acceptDocument(v2other, v2)).toThrow(EquivocationError);
  });

  it('refuses to compare documents of two accounts', () => {
    const other = generateKeyPair();
    const foreign = createAccountDocument({ localpart: 'alice', rootKey: other.secretKey, home: companion }, { ts });
    expect(() => chooseDocument(v1, foreign)).toThrow(AccountMismatchError);
  });
});
