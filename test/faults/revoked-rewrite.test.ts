// A revoked home still has its key. Before revocations pinned the revoked home's log, it could sign a second
// version of one of its old slots with a huge lamport and a content hash ground low; the lower hash took the
// slot on every replica, and a device of the account disappeared while a rogue one appeared, after the
// revocation. Here a real server process is attacked that way over libp2p (the ops relayed by a current home,
// as any home holding them would pass them on): the revocation pins the log's digest, the ground version is
// refused as `revoked`, and the server's state and log digest stay what the revocation pinned.
import { waitFor } from '@polyhome/p2p/testing';
import { opHash } from '@polyhome/sync';
import { groundOp, makeAccount, OpWriter, withoutHome, type FixtureAccount } from '@polyhome/sync/testing';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../support/convergence.js';
import { useHandPlayedHome } from '../support/hostile-home.js';

describe('a revoked home rewriting its old ops, over libp2p, to a server process', () => {
  const account: FixtureAccount = makeAccount({
    seed: `revoked-${process.pid}`,
    localpart: 'revoked',
    homes: 2,
    roles: ['client', 'client'],
  });
  // A current home of the account, played by hand: a real libp2p node with the home's key, no sync service.
  const suite = useHandPlayedHome('revoked', account);

  it('refuses a ground second version of a revoked home’s op, and keeps the pinned log', async () => {
    const { setup, fresh, server, document } = suite;
    // Each send opens a new sync stream. The server may be opening its own session to this home at that moment (it
    // reopens one after each session ends, and this hand-played home serves none); the tie-break can then end the
    // inbound stream before its frames are handled. The frames are idempotent, so a send is repeated, at most 5
    // times, until the server shows it handled them.
    const sendUntil = async (
      frames: unknown[],
      docSeq: number,
      done: () => Promise<boolean> | boolean,
      what: string,
    ) => {
      for (let attempt = 1; ; attempt++) {
        await setup.send(frames, docSeq);
        try {
          await waitFor(done, what, 6_000);
          return;
        } catch (error) {
          if (attempt === 5) throw error;
        }
      }
    };
    const revokedHome = account.homes[1]!;
    const writer = new OpWriter(account, revokedHome, document.seq);
    const ops = [writer.devicePut('R1'), writer.devicePut('R2')];
    const db = await openDatabase(fresh.databaseUrl, account.serverName, 'server database');
    try {
      await sendUntil(
        [setup.opsFrame(ops)],
        document.seq,
        async () => (await db.versionVector())[revokedHome.peerId] === 2,
        'the server to hold the home’s ops',
      );
      // The root revokes the home, pinning the digest of its log as the server holds it.
      const digest = (await db.logDigests())[revokedHome.peerId]!;
      const revoked = withoutHome(account, document, revokedHome.peerId, { seq: 2, digest });
      await sendUntil(
        [{ t: 'doc', account: account.serverName, document: revoked }],
        document.seq,
        async () => (await db.store.document(account.serverName))?.seq === revoked.seq,
        'the server to take the revocation',
      );
      const before = await db.store.state(account.serverName);
      expect(Object.keys(before.devices).sort()).toEqual(['R1', 'R2']);

      // The revoked key signs another version of seq 1: huge lamport, hash below both held ops.
      const rogue = groundOp(writer, 1, 'ROGUE', ops.map(opHash));
      await sendUntil(
        [setup.opsFrame([rogue])],
        revoked.seq,
        () => server.logs.some((line) => line.includes('sync rejected') && line.includes('"code":"revoked"')),
        'the server to refuse the ground op',
      );
      expect(await db.store.state(account.serverName)).toEqual(before);
      expect((await db.logDigests())[revokedHome.peerId]).toBe(digest);
      expect(await db.store.equivocators(account.serverName)).toEqual([]);
    } finally {
      await db.close();
    }
  }, 120_000);
});
