import { encodeBase64, homeKeyId, signBytes, signedBytes, signJson } from '@polyhome/identity';
import { describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, MAX_KEY_BYTES, MAX_OP_BYTES } from './constants.js';
import { OpRejectedError } from './errors.js';
import { pairKey } from './bodies.js';
import {
  deviceBody,
  deviceKey,
  makeAccount,
  makeHome,
  OpWriter,
  SAMPLE_VERIFIER,
  withoutHome,
} from './testing/index.js';
import { OP_TYPE, type Op } from './types.js';
import { assertValidOp, checkOrigin, parseOp, validateOp } from './validate.js';

const account = makeAccount({ homes: 3 });
const writer = () => new OpWriter(account, account.homes[0]!);

function reason(input: unknown, document = account.document): string {
  const result = validateOp(input, document);
  return result.ok ? 'ok' : result.reason;
}

function tamper(op: Op, change: (copy: Record<string, unknown>) => void): Record<string, unknown> {
  const copy = structuredClone(op) as unknown as Record<string, unknown>;
  change(copy);
  return copy;
}

describe('structure', () => {
  const op = writer().devicePut('DEV1');

  it('accepts a valid op of every kind', () => {
    const w = writer();
    for (const made of [
      w.devicePut('D'),
      w.deviceDelete('D'),
      w.memberSet('!r:x', 'join'),
      w.crossSigningPut('master'),
    ]) {
      expect(reason(made)).toBe('ok');
    }
  });

  it.each([
    ['unknown field', (c: Record<string, unknown>) => (c.extra = 1)],
    ['unsigned', (c: Record<string, unknown>) => (c.unsigned = {})],
    ['missing field', (c: Record<string, unknown>) => delete c.lamport],
    ['string seq', (c: Record<string, unknown>) => (c.seq = '1')],
    ['float lamport', (c: Record<string, unknown>) => (c.lamport = 1.5)],
    ['seq 0', (c: Record<string, unknown>) => (c.seq = 0)],
    ['lamport 0', (c: Record<string, unknown>) => (c.lamport = 0)],
    ['negative ts', (c: Record<string, unknown>) => (c.ts = -1)],
    ['unsafe integer', (c: Record<string, unknown>) => (c.seq = 2 ** 53)],
    ['unknown kind', (c: Record<string, unknown>) => (c.op = 'device.explode')],
    ['bad origin', (c: Record<string, unknown>) => (c.origin = 'not-a-peer-id')],
    ['bad account', (c: Record<string, unknown>) => (c.account = 'example.org')],
    ['body array', (c: Record<string, unknown>) => (c.body = [])],
    ['empty key', (c: Record<string, unknown>) => (c.key = '')],
    ['control char in key', (c: Record<string, unknown>) => (c.key = 'a\u0000b')],
  ])('refuses %s as malformed', (_name, change) => {
    expect(reason(tamper(op, change))).toBe('malformed');
  });

  it('refuses non-objects', () => {
    for (const input of [null, 1, 'op', [], undefined]) expect(reason(input)).toBe('malformed');
  });

  it('refuses an op for another account', () => {
    const other = makeAccount({ seed: 'bob', homes: 1 });
    const foreign = new OpWriter(other, other.homes[0]!).deviceDelete('D');
    expect(reason(foreign)).toBe('wrong_account');
  });

  it('refuses oversized keys, bodies and ops', () => {
    const w = writer();
    const longKey = 'k'.repeat(MAX_KEY_BYTES + 1);
    expect(reason(tamper(w.deviceDelete('D'), (c) => (c.key = longKey)))).toBe('malformed');
    expect(reason(tamper(w.deviceDelete('D'), (c) => (c.key = 'é'.repeat(128))))).toBe('malformed'); // 256 bytes
    const big = tamper(op, (c) => ((c.body as Record<string, unknown>).display_name = 'x'.repeat(MAX_BODY_BYTES)));
    expect(reason(big)).toBe('too_large');
    const huge = tamper(op, (c) => (c.extra = 'x'.repeat(MAX_OP_BYTES)));
    expect(reason(huge)).toBe('too_large');
  });

  it('refuses floats and other non-canonical JSON anywhere', () => {
    expect(reason(tamper(op, (c) => ((c.body as Record<string, unknown>).display_name = 0.5)))).toBe('malformed');
  });
});

describe('bodies', () => {
  const w = writer();
  it('device.put must be the DeviceKeys of this user and device', () => {
    const op = w.devicePut('DEV1');
    expect(reason(tamper(op, (c) => ((c.body as Record<string, unknown>).device_id = 'OTHER')))).toBe('malformed');
    expect(reason(tamper(op, (c) => ((c.body as Record<string, unknown>).user_id = '@mallory:x')))).toBe('malformed');
    expect(reason(tamper(op, (c) => delete (c.body as Record<string, unknown>).keys))).toBe('malformed');
    expect(reason(tamper(op, (c) => ((c.body as Record<string, unknown>).home = 'nope')))).toBe('malformed');
  });

  // What a rogue home could send: an op it signed properly, whose device body createOp would have refused.
  function fromOtherHome(body: Record<string, unknown>): Record<string, unknown> {
    const home = account.homes[1]!;
    const content = {
      type: OP_TYPE,
      account: account.serverName,
      origin: home.peerId,
      seq: 1,
      lamport: 1,
      doc_seq: account.document.seq,
      ts: 0,
      op: 'device.put',
      key: body.device_id,
      body,
    };
    return signJson(content, account.serverName, homeKeyId(home.peerId), home.secretKey);
  }

  it('device.put keys must be self-signed by the device, on every replica', () => {
    const valid = deviceBody(account, 'PHONE');
    expect(reason(fromOtherHome({ ...valid }))).toBe('ok');
    const forged = {
      ...valid,
      signatures: { [account.userId]: { 'ed25519:PHONE': encodeBase64(new Uint8Array(64)) } },
    };
    const refused = validateOp(fromOtherHome(forged), account.document);
    expect(refused).toMatchObject({ ok: false, reason: 'malformed' });
    expect(!refused.ok && refused.detail).toContain('no valid self-signature');
    // Signed by another key than the device's own, or over other keys, or with no Ed25519 key at all.
    const { signatures: _s, ...content } = valid;
    const byOther = signBytes(signedBytes(content), deviceKey('OTHER'));
    const wrongKey = { ...valid, signatures: { [account.userId]: { 'ed25519:PHONE': encodeBase64(byOther) } } };
    expect(reason(fromOtherHome(wrongKey))).toBe('malformed');
    const swapped = { ...valid, keys: { ...valid.keys, 'curve25519:PHONE': encodeBase64(new Uint8Array(32)) } };
    expect(reason(fromOtherHome(swapped))).toBe('malformed');
    const noEd25519 = { ...valid, keys: { 'curve25519:PHONE': valid.keys['curve25519:PHONE']! } };
    expect(validateOp(fromOtherHome(noEd25519), account.document)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('no Ed25519 key ed25519:PHONE') as unknown,
    });
    // Our own fields are not covered by the device's signature; a device that has just logged in has no keys.
    expect(reason(fromOtherHome({ ...valid, display_name: 'renamed' }))).toBe('ok');
    const loggedIn = { user_id: account.userId, device_id: 'NEW', algorithms: [], keys: {}, signatures: {} };
    expect(reason(fromOtherHome(loggedIn))).toBe('ok');
    expect(() => w.make('device.put', 'PHONE', forged)).toThrow(OpRejectedError);
  });

  it('device.delete must be an empty tombstone', () => {
    expect(() => w.make('device.delete', 'D', { x: 1 })).toThrow(OpRejectedError);
  });

  it('member.set checks room id, membership and the event', () => {
    expect(() => w.make('member.set', '!r:x', { room_id: '!other:x', membership: 'join' })).toThrow(OpRejectedError);
    expect(() => w.make('member.set', '!r:x', { room_id: '!r:x', membership: 'joined' })).toThrow(OpRejectedError);
    expect(() => w.make('member.set', 'r:x', { room_id: 'r:x', membership: 'join' })).toThrow(OpRejectedError);
    const event = {
      type: 'm.room.member',
      room_id: '!r:x',
      state_key: account.userId,
      content: { membership: 'join' },
    };
    expect(reason(w.make('member.set', '!r:x', { room_id: '!r:x', membership: 'join', event }))).toBe('ok');
    expect(() => w.make('member.set', '!r:x', { room_id: '!r:x', membership: 'leave', event })).toThrow(
      OpRejectedError,
    );
  });

  it('cross_signing.put needs a known usage matching the body', () => {
    expect(() =>
      w.make('cross_signing.put', 'other', { user_id: account.userId, usage: ['other'], keys: { 'ed25519:a': 'a' } }),
    ).toThrow(OpRejectedError);
    expect(() =>
      w.make('cross_signing.put', 'master', {
        user_id: account.userId,
        usage: ['self_signing'],
        keys: { 'ed25519:a': 'a' },
      }),
    ).toThrow(OpRejectedError);
    expect(() =>
      w.make('cross_signing.put', 'master', {
        user_id: account.userId,
        usage: ['master'],
        keys: { 'ed25519:a': 'a', 'ed25519:b': 'b' },
      }),
    ).toThrow(OpRejectedError);
  });
});

describe('bodies of account data, profile and push rules', () => {
  const w = writer();
  const refused = (kind: Parameters<typeof w.make>[0], key: string, body: Record<string, unknown>) =>
    expect(() => w.make(kind, key, body)).toThrow(OpRejectedError);

  it('account_data.put: the key is the type, the content the JSON text of an object (floats allowed)', () => {
    const ok = { type: 'm.direct', content_json: '{"order":0.25}' };
    expect(w.make('account_data.put', 'm.direct', ok).op).toBe('account_data.put');
    refused('account_data.put', 'm.direct', { type: 'm.other', content_json: '{}' });
    refused('account_data.put', 'm.direct', { type: 'm.direct', content_json: '[]' });
    refused('account_data.put', 'm.direct', { type: 'm.direct', content_json: '{' });
    refused('account_data.put', 'm.direct', { type: 'm.direct', content: {} });
    refused('account_data.put', 'm.direct', { ...ok, extra: 1 });
    refused('account_data.put', '', { type: '', content_json: '{}' });
    refused('account_data.put', 'm.direct', {
      type: 'm.direct',
      content_json: `{"a":${'['.repeat(40)}${']'.repeat(40)}}`,
    });
  });

  it('room_account_data.put: the key is the canonical pair of room and type', () => {
    const body = { room_id: '!r:x', type: 'm.tag', content_json: '{"tags":{}}' };
    expect(w.make('room_account_data.put', pairKey('!r:x', 'm.tag'), body).key).toBe('["!r:x","m.tag"]');
    refused('room_account_data.put', '!r:x/m.tag', body);
    refused('room_account_data.put', pairKey('!s:x', 'm.tag'), body);
    refused('room_account_data.put', pairKey('r:x', 'm.tag'), { ...body, room_id: 'r:x' });
  });

  it('profile.set: one known field named by the key; avatars are mxc URIs', () => {
    expect(w.make('profile.set', 'displayname', { displayname: 'Alice' }).op).toBe('profile.set');
    expect(w.make('profile.set', 'avatar_url', { avatar_url: '' }).op).toBe('profile.set');
    refused('profile.set', 'displayname', { avatar_url: 'mxc://x/y' });
    refused('profile.set', 'status', { status: 'hi' });
    refused('profile.set', 'avatar_url', { avatar_url: 'https://x/y.png' });
    refused('profile.set', 'displayname', { displayname: 'x'.repeat(256) });
  });

  it('push_rule.put: user rules carry actions and what their kind matches; default rules only enabled/actions', () => {
    const key = pairKey('content', 'cats');
    expect(w.make('push_rule.put', key, { kind: 'content', rule_id: 'cats', pattern: 'cat*', actions: [] }).op).toBe(
      'push_rule.put',
    );
    refused('push_rule.put', key, { kind: 'content', rule_id: 'cats', actions: [] });
    refused('push_rule.put', key, { kind: 'content', rule_id: 'cats', pattern: 'c', actions: [], conditions: [] });
    refused('push_rule.put', pairKey('room', '!r:x'), { kind: 'room', rule_id: '!r:x', actions: [], pattern: 'p' });
    refused('push_rule.put', pairKey('bogus', 'x'), { kind: 'bogus', rule_id: 'x', actions: [] });
    const master = pairKey('override', '.m.rule.master');
    expect(w.make('push_rule.put', master, { kind: 'override', rule_id: '.m.rule.master', enabled: true }).op).toBe(
      'push_rule.put',
    );
    refused('push_rule.put', master, { kind: 'override', rule_id: '.m.rule.master', conditions: [] });
    refused('push_rule.put', master, { kind: 'override', rule_id: '.m.rule.master', enabled: 'yes' });
  });
});

describe('password verifiers', () => {
  const w = writer();
  it('password.set takes an scrypt verifier with affordable, unshrunk costs', () => {
    expect(w.make('password.set', 'verifier', { verifier: SAMPLE_VERIFIER }).op).toBe('password.set');
    const refused = (key: string, verifier: unknown) =>
      expect(() => w.make('password.set', key, { verifier })).toThrow(OpRejectedError);
    refused('other', SAMPLE_VERIFIER);
    refused('verifier', 'hunter2');
    refused('verifier', SAMPLE_VERIFIER.replace('16384', '1024'));
    refused('verifier', SAMPLE_VERIFIER.replace('16384', '16385'));
    refused('verifier', SAMPLE_VERIFIER.replace('16384', String(2 ** 21)));
    refused('verifier', SAMPLE_VERIFIER.replace('$8$1$', '$1$1$'));
    refused('verifier', SAMPLE_VERIFIER.replace('$8$1$', '$8$64$'));
  });
});

describe('signature and origin', () => {
  it('refuses a tampered op as bad_signature', () => {
    const op = writer().devicePut('DEV1');
    expect(reason(tamper(op, (c) => (c.lamport = 99)))).toBe('bad_signature');
  });

  it('refuses a signature under another key id or extra signatures', () => {
    const op = writer().deviceDelete('D');
    const other = account.homes[1]!.peerId;
    expect(reason(tamper(op, (c) => (c.signatures = { [account.serverName]: { [`ed25519:${other}`]: 'AAAA' } })))).toBe(
      'bad_signature',
    );
    expect(reason(tamper(op, (c) => ((c.signatures as Record<string, unknown>)['x.org'] = { 'ed25519:a': 'A' })))).toBe(
      'bad_signature',
    );
  });

  it('refuses an op signed by a home not in the document', () => {
    const stranger = makeHome('stranger');
    const op = new OpWriter(account, stranger).deviceDelete('D');
    expect(reason(op)).toBe('unknown_origin');
    // Naming a newer document than ours: it may wait for that document.
    const later = new OpWriter(account, stranger, account.document.seq + 1).deviceDelete('D');
    expect(validateOp(later, account.document)).toMatchObject({ ok: true, origin: 'wait_for_document' });
    expect(() => assertValidOp(later, account.document)).toThrow(OpRejectedError);
  });

  it('a revoked home is accepted up to its cutoff only', () => {
    const revokedHome = account.homes[2]!;
    const doc = withoutHome(account, account.document, revokedHome.peerId, 1);
    const w = new OpWriter(account, revokedHome);
    const first = w.deviceDelete('D');
    const second = w.deviceDelete('D');
    expect(checkOrigin(first, doc)).toBe('ok');
    expect(() => checkOrigin(second, doc)).toThrow(expect.objectContaining({ reason: 'revoked' }) as Error);
  });

  it('an account document presented as an op is wrong_type', () => {
    expect(reason(account.document)).toBe('wrong_type');
    const disguised = { ...account.document, type: 'polyhome.op' };
    expect(reason(disguised)).toBe('malformed');
  });

  it('parseOp returns the input typed', () => {
    const op = writer().deviceDelete('D');
    expect(parseOp(op)).toBe(op);
  });
});
