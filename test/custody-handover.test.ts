// /polyhome/custody/1.0.0 against a real server process: a home leaving an account hands the root key over with
// the document revoking itself (the last step of a migration between providers, test/migration.test.ts). Here a
// home of a fixture account is played by hand (a real libp2p node with its key), and so is a stranger. Every bad
// request is refused with a reason and changes nothing on the server (custody and document stay as they were);
// the right one is taken, repeated it is answered the same, and another document of that seq is refused.
import { encodeBase64, removeHome, SecretKey, type AccountDocument } from '@polyhome/identity';
import {
  CUSTODY_PROTOCOL,
  CustodyRefusedError,
  createPolyhomeHost,
  handOverCustody,
  type PolyhomeHost,
} from '@polyhome/p2p';
import { makeAccount, makeHome, type FixtureAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, frame } from './support/raw-sync.js';
import { serverWithHandPlayedHome, type HostileSetup } from './support/hostile-home.js';

describe('custody handover over libp2p: a leaving home hands the root key to a server home', () => {
  // Two homes: 0 a server played by hand (the one leaving), 1 a client; the server process is added third.
  const account: FixtureAccount = makeAccount({ seed: 'custody-handover', localpart: 'mover', homes: 2 });
  let setup: HostileSetup;
  let stranger: PolyhomeHost;
  const leaving = account.homes[0]!;
  const seed = (): string => encodeBase64(account.rootKey.revealSeed());

  const onServer = async (): Promise<{ custody: unknown; seq: unknown }> => {
    const got = await setup.fresh.server.admin('GET', `/admin/v1/accounts/${encodeURIComponent(account.userId)}`);
    return { custody: got.body['custody'], seq: got.body['doc_seq'] };
  };
  const refusal = async (from: PolyhomeHost, request: unknown): Promise<CustodyRefusedError> => {
    const error = await handOverCustody(from, setup.fresh.server.addr, request as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CustodyRefusedError);
    return error as CustodyRefusedError;
  };
  /** The departure of the leaving home: the held document without it, revoked at seq 0. */
  const departure = (document: AccountDocument = setup.document): AccountDocument =>
    removeHome(document, leaving.peerId, 0, account.rootKey);

  beforeAll(async () => {
    setup = await serverWithHandPlayedHome('custody', account, 0);
    stranger = await createPolyhomeHost({ nodeKey: SecretKey.generate(), listen: ['/ip4/127.0.0.1/tcp/0'] });
    expect(await onServer()).toEqual({ custody: 'self', seq: setup.document.seq });
  }, 180_000);

  afterAll(async () => {
    await stranger?.stop();
    await setup?.dispose();
  }, 60_000);

  it('refuses bad requests with a reason, and keeps custody and document as they were', async () => {
    const before = await onServer();
    const cases: Array<[PolyhomeHost, unknown, string, RegExp]> = [
      [setup.host, { document: departure(), root_key: seed(), extra: 1 }, 'M_BAD_JSON', /Unknown field extra/],
      [setup.host, { document: departure(), root_key: 'not base64!' }, 'M_BAD_JSON', /root_key/],
      [setup.host, { document: departure(), root_key: 7 }, 'M_BAD_JSON', /root_key/],
      [setup.host, { document: { ...departure(), seq: 99 }, root_key: seed() }, 'M_INVALID_PARAM', /not valid/],
      [setup.host, { document: 'nope', root_key: seed() }, 'M_INVALID_PARAM', /not valid/],
      // The key of another account.
      [
        setup.host,
        { document: departure(), root_key: encodeBase64(SecretKey.generate().revealSeed()) },
        'M_FORBIDDEN',
        /not the root key/,
      ],
      // A stranger (not a home) sends a departure of the leaving home: it does not revoke the stranger.
      [stranger, { document: departure(), root_key: seed() }, 'M_FORBIDDEN', /must revoke it/],
      // A document that drops this server.
      [
        setup.host,
        { document: removeHome(departure(), setup.fresh.server.peerId, 0, account.rootKey), root_key: seed() },
        'M_FORBIDDEN',
        /does not name this server/,
      ],
    ];
    for (const [from, request, errcode, message] of cases) {
      const refused = await refusal(from, request);
      expect(refused.errcode, JSON.stringify(request).slice(0, 200)).toBe(errcode);
      expect(refused.error).toMatch(message);
    }
    // Not JSON, and larger than the frame cap: refused by the protocol itself.
    const notJson = await exchange(setup.host, setup.fresh.server.addr, CUSTODY_PROTOCOL, [new Uint8Array([1, 0x7b])]);
    expect(JSON.stringify(notJson.frames)).toMatch(/M_NOT_JSON/);
    const tooLarge = await exchange(setup.host, setup.fresh.server.addr, CUSTODY_PROTOCOL, [
      frame(new Uint8Array(200 * 1024).fill(0x20)),
    ]);
    expect(JSON.stringify(tooLarge.frames)).toMatch(/M_TOO_LARGE/);
    expect(await onServer()).toEqual(before);
  }, 120_000);

  it('takes the key and the document from the leaving home; a repeat is answered with the seq in force', async () => {
    const document = departure();
    const taken = await handOverCustody(setup.host, setup.fresh.server.addr, { document, root_key: seed() });
    expect(taken.seq).toBe(document.seq);
    expect(await onServer()).toEqual({ custody: 'hosted', seq: document.seq });
    // The server holds the key: it signs the account's next document itself.
    const added = await setup.fresh.server.admin(
      'POST',
      `/admin/v1/accounts/${encodeURIComponent(account.userId)}/homes`,
      { multiaddr: `/ip4/127.0.0.1/tcp/9/p2p/${makeHome('custody-handover:new').peerId}`, role: 'client', name: 'new' },
    );
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(added.body['seq']).toBe(document.seq + 1);
    // The leaving home, not knowing its request was taken, sends it again: answered with the seq in force.
    const repeat = await handOverCustody(setup.host, setup.fresh.server.addr, { document, root_key: seed() });
    expect(repeat.seq).toBe(document.seq + 1);
    // Another departure of that seq (signed at another time) changes nothing either.
    const other = removeHome(setup.document, leaving.peerId, 0, account.rootKey, { ts: Date.now() + 1 });
    expect(
      (await handOverCustody(setup.host, setup.fresh.server.addr, { document: other, root_key: seed() })).seq,
    ).toBe(document.seq + 1);
    // A stranger is still refused.
    expect((await refusal(stranger, { document, root_key: seed() })).errcode).toBe('M_FORBIDDEN');
    expect(await onServer()).toEqual({ custody: 'hosted', seq: document.seq + 1 });
  }, 120_000);
});
