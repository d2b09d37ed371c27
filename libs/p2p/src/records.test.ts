import {
  canonicalJsonBytes,
  createAccountDocument,
  keyPairFromSeed,
  signTyped,
  ACCOUNT_DOCUMENT_TYPE,
  ROOT_KEY_ID,
} from '@polyhome/identity';
import { makeAccount, seedFrom, withHome, makeHome, OpWriter } from '@polyhome/sync/testing';
import { describe, expect, it } from 'vitest';
import {
  accountCid,
  accountRecordKey,
  accountRecordSelector,
  accountRecordValidator,
  createAccountRecordValidator,
  decodeAccountRecord,
  encodeAccountRecord,
} from './records.js';

describe('DHT records', () => {
  const account = makeAccount({ seed: 'records', homes: 2 });
  const key = accountRecordKey(account.serverName);
  const v2 = account.document;
  const v3 = withHome(account, v2, makeHome('records:extra'));

  it('the account CID is CIDv1 raw sha256 of polyhome:account:<server name>, the same every time', async () => {
    const a = await accountCid(account.serverName);
    const b = await accountCid(account.serverName);
    expect(a.version).toBe(1);
    expect(a.code).toBe(0x55);
    expect(a.multihash.code).toBe(0x12);
    expect(a.equals(b)).toBe(true);
    const { createHash } = await import('node:crypto');
    const digest = createHash('sha256').update(`polyhome:account:${account.serverName}`).digest();
    expect(Buffer.from(a.multihash.digest).equals(digest)).toBe(true);
  });

  it('accepts the canonical JSON of the signed document under its own key', () => {
    expect(() => accountRecordValidator(key, encodeAccountRecord(v2))).not.toThrow();
    expect(decodeAccountRecord(key, encodeAccountRecord(v3)).seq).toBe(v3.seq);
  });

  it('refuses a document signed by another key under this account name', () => {
    const other = keyPairFromSeed(seedFrom('records:forger')).secretKey;
    const { signatures: _s, ...content } = v3;
    const forged = signTyped(content, ACCOUNT_DOCUMENT_TYPE, account.serverName, ROOT_KEY_ID, other);
    expect(() => accountRecordValidator(key, canonicalJsonBytes(forged))).toThrow(/invalid polyhome DHT record/);
  });

  it("refuses another account's valid document under this key", () => {
    const mallory = makeAccount({ seed: 'records:mallory', homes: 1 });
    expect(() => accountRecordValidator(key, encodeAccountRecord(mallory.document))).toThrow();
    const forger = keyPairFromSeed(seedFrom('records:forger')).secretKey;
    const own = createAccountDocument({ localpart: 'alice', rootKey: forger, home: makeHome('x').home });
    expect(() => accountRecordValidator(key, encodeAccountRecord(own))).toThrow();
  });

  it('refuses a signed op, non-canonical bytes, non-JSON and foreign keys', () => {
    const op = new OpWriter(account, account.homes[0]!).devicePut('DEV');
    expect(() => accountRecordValidator(key, canonicalJsonBytes(op))).toThrow();
    expect(() => accountRecordValidator(key, new TextEncoder().encode(JSON.stringify(v2, null, 1)))).toThrow(
      /canonical/,
    );
    expect(() => accountRecordValidator(key, new Uint8Array([0xff, 0x00]))).toThrow();
    expect(() =>
      accountRecordValidator(new TextEncoder().encode('/polyhome/other/x'), encodeAccountRecord(v2)),
    ).toThrow();
  });

  it('the selector takes the highest seq and never an invalid record', () => {
    const forgedHigh = new TextEncoder().encode(
      new TextDecoder().decode(encodeAccountRecord(v3)).replace(`"seq":${v3.seq}`, `"seq":${v3.seq + 5}`),
    );
    const records = [encodeAccountRecord(v2), forgedHigh, encodeAccountRecord(v3), encodeAccountRecord(v2)];
    expect(accountRecordSelector(key, records)).toBe(2);
    expect(accountRecordSelector(key, [encodeAccountRecord(v3), encodeAccountRecord(v2)])).toBe(0);
  });

  it('the stateful validator refuses an older document once a newer one was seen (replay)', () => {
    const validate = createAccountRecordValidator();
    validate(key, encodeAccountRecord(v2));
    validate(key, encodeAccountRecord(v3));
    expect(() => validate(key, encodeAccountRecord(v2))).toThrow(/rollback/);
    expect(() => validate(key, encodeAccountRecord(v3))).not.toThrow();
  });
});
