// Any home could replace the account's cross-signing keys: `cross_signing.put` was checked against nothing, so a
// rogue home could put its own master key (and keys signed by it) and make its own devices look cross-signed
// to every client of the account. The account document now names the master key (only the root signs it), and
// homes accept a self-signing or user-signing key only with a valid signature by that master key. Here a real
// server process gets the owner's keys and then a rogue home's, over libp2p: the rogue ones are refused as
// `cross_signing`, and the server's Matrix `/keys/query` serves the owner's keys, never the rogue's.
import { waitFor } from '@polyhome/p2p/testing';
import type { CrossSigningUsage } from '@polyhome/sync';
import {
  crossSigningKeys,
  makeAccount,
  OpWriter,
  withCrossSigningMaster,
  type FixtureAccount,
} from '@polyhome/sync/testing';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../support/convergence.js';
import { useHandPlayedHome } from '../support/hostile-home.js';

const USAGES: readonly CrossSigningUsage[] = ['master', 'self_signing', 'user_signing'];

describe('a rogue home replacing the cross-signing keys, over libp2p, to a server process', () => {
  const account: FixtureAccount = makeAccount({
    seed: `rogue-cs-${process.pid}`,
    localpart: 'owner',
    homes: 2,
    roles: ['client', 'client'],
  });
  // The rogue home (a current home of the account), played by hand with its own key.
  const suite = useHandPlayedHome('rogue-cs', account, 1);

  /** The account's cross-signing keys as the server's Matrix API serves them to a client of the account. */
  async function keysQuery(): Promise<Record<string, unknown>> {
    const { server } = suite;
    const token = await server.admin(
      'POST',
      `/admin/v1/accounts/${encodeURIComponent(account.userId)}/login-token`,
      {},
    );
    const login = await server.request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.token',
      token: token.body['login_token'],
    });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    const answer = await server.request(
      'POST',
      '/_matrix/client/v3/keys/query',
      { device_keys: { [account.userId]: [] } },
      { Authorization: `Bearer ${String(login.body['access_token'])}` },
    );
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const of = (field: string) => (answer.body[field] as Record<string, unknown>)[account.userId];
    return { master: of('master_keys'), self_signing: of('self_signing_keys'), user_signing: of('user_signing_keys') };
  }

  it('refuses the rogue home’s master key and keys signed by it; /keys/query serves the owner’s', async () => {
    const { setup, fresh, server, document } = suite;
    const owner = crossSigningKeys(account, 'owner');
    const bound = withCrossSigningMaster(account, document, owner.master);
    // The owner's home signs the keys; the rogue home relays them and the root-signed document, as any home would.
    const ownerHome = new OpWriter(account, account.homes[0]!, bound.seq);
    const ownerOps = USAGES.map((u) => ownerHome.make('cross_signing.put', u, { ...owner.bodies[u] }));
    await setup.send(
      [{ t: 'doc', account: account.serverName, document: bound }, setup.opsFrame(ownerOps)],
      document.seq,
    );
    const db = await openDatabase(fresh.databaseUrl, account.serverName, 'server database');
    try {
      await waitFor(
        async () => (await db.versionVector())[account.homes[0]!.peerId] === USAGES.length,
        'the server to take the owner’s keys',
        30_000,
      );
      expect(await keysQuery()).toEqual(owner.bodies);

      // The rogue home's own keys: a master key of its own, and keys signed by it.
      const mine = crossSigningKeys(account, 'rogue');
      const rogueHome = new OpWriter(account, account.homes[1]!, bound.seq).observe(2 ** 30);
      const rogueOps = USAGES.map((u) => rogueHome.make('cross_signing.put', u, { ...mine.bodies[u] }));
      await setup.send([setup.opsFrame(rogueOps)], bound.seq);
      await waitFor(
        () =>
          server.logs.filter((line) => line.includes('sync rejected') && line.includes('"code":"cross_signing"'))
            .length >= 1,
        'the server to refuse the rogue keys',
        30_000,
      );
      const refused = server.logs.find((l) => l.includes('"code":"cross_signing"'))!;
      expect(refused).toContain('is not the master key the document names');
      expect((await db.versionVector())[account.homes[1]!.peerId]).toBeUndefined();
      expect(await keysQuery()).toEqual(owner.bodies);
    } finally {
      await db.close();
    }
  }, 120_000);
});
