// Home on real libp2p over loopback and real PGlite stores: a local change is signed, stored, pushed and
// raises `changed` on the other home; acks land in the store; a refused change is a Matrix M_BAD_JSON; a home
// made empty takes in an account whose document names it; document changes and announcements.
import { MatrixError } from '@polyhome/matrix/errors';
import { HOME_PEER_TAG, HOME_PEER_TAG_VALUE } from '@polyhome/p2p';
import { waitFor } from '@polyhome/p2p/testing';
import { createInProcessQueue } from '@polyhome/queue';
import { openStorage, SqlReplicaStore, SqlRoomStore, SqlSeqGuardStore, type Storage } from '@polyhome/storage';
import { createTestDatabase, type TestDatabase } from '@polyhome/storage/testing';
import { makeAccount, makeHome, withHome, type FixtureHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SelfRevocationError } from './errors.js';
import { Home, type HomeInit } from './home.js';
import { LocalChangeRefusedError } from './local-op-writer.js';
import { MemoryPairingCodeStore, newPairingCode, PAIRING_MAX_FAILURES } from './pairing.js';

interface Running {
  home: Home;
  store: SqlReplicaStore;
  seqGuard: SqlSeqGuardStore;
  storage: Storage;
  close(): Promise<void>;
}

const INIT: HomeInit = { listen: ['/ip4/127.0.0.1/tcp/0'], announceEveryMs: 60 * 60 * 1000 };

async function runHome(fixture: FixtureHome, init: Partial<HomeInit> = {}): Promise<Running> {
  const db: TestDatabase = await createTestDatabase('pglite');
  const storage: Storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
  const store = new SqlReplicaStore(storage.dataSource);
  const queue = createInProcessQueue();
  const seqGuard = await SqlSeqGuardStore.open(storage.dataSource);
  const rooms = new SqlRoomStore(storage.dataSource);
  const home = await Home.create({ nodeKey: fixture.secretKey, store, queue, seqGuard, rooms }, { ...INIT, ...init });
  return {
    home,
    store,
    seqGuard,
    storage,
    close: async () => {
      await queue.close();
      await home.stop();
      await storage.close();
      await db.dispose();
    },
  };
}

describe('Home', () => {
  const account = makeAccount({ seed: 'libs-home', homes: 2 });
  const joiner = makeHome('libs-home:joiner');
  const pairing = new MemoryPairingCodeStore();
  let a: Running;
  let b: Running;
  let c: Running;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([
      runHome(account.homes[0]!),
      runHome(account.homes[1]!),
      runHome(joiner, { adoptWhenEmpty: true, pairing }),
    ]);
    await a.store.hostAccount(account.document, { custody: 'self' });
    await b.store.hostAccount(account.document, { custody: 'self' });
    await Promise.all([a.home.start(), b.home.start(), c.home.start()]);
  }, 240_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), c?.close()]);
  });

  it('hosts the accounts of its store at start, under the PeerId of its node key', () => {
    expect(a.home.peerId).toBe(account.homes[0]!.peerId);
    expect(a.home.hosted()).toEqual([account.serverName]);
    expect(c.home.hosted()).toEqual([]);
  });

  it('signs, stores and pushes a local change; the other home applies it, says what changed and acks', async () => {
    const changed: Array<{ account: string; keys: string[] }> = [];
    b.home.on('changed', (detail) => changed.push(detail));
    await a.home.host.dial(b.home.host.getMultiaddrs()[0]!);
    await waitFor(() => a.home.sessions(account.serverName).length > 0, 'a session');

    const ops = await a.home.applyLocal(account.serverName, [
      { op: 'member.set', key: '!room:example.org', body: { room_id: '!room:example.org', membership: 'join' } },
    ]);
    expect(ops.map((op) => [op.origin, op.seq])).toEqual([[a.home.peerId, 1]]);

    await waitFor(() => changed.length > 0, 'the change on b');
    expect(changed[0]).toEqual({ account: account.serverName, keys: ['member:!room:example.org'] });
    expect(Object.keys((await b.store.state(account.serverName)).memberships)).toEqual(['!room:example.org']);
    // b's acknowledgement is written to a's delivery store in the background.
    await waitFor(async () => {
      const rows = await a.store.deliveryState(account.serverName);
      return rows.some((r) => r.peerId === b.home.peerId && (r.ackedVv[a.home.peerId] ?? 0) >= 1);
    }, 'the ack recorded on a');
  });

  it('signs concurrent changes of one account with distinct seqs', async () => {
    const batches = await Promise.all(
      ['!r1:x', '!r2:x', '!r3:x'].map((room) =>
        a.home.applyLocal(account.serverName, [
          { op: 'member.set', key: room, body: { room_id: room, membership: 'join' } },
        ]),
      ),
    );
    const seqs = batches.flat().map((op) => op.seq);
    expect(new Set(seqs).size).toBe(3);
  });

  it('refuses a malformed change: LocalChangeRefusedError, and M_BAD_JSON through the Matrix port', async () => {
    const bad = [{ op: 'member.set' as const, key: '!x:y', body: { membership: 'sideways' } }];
    await expect(a.home.applyLocal(account.serverName, bad)).rejects.toBeInstanceOf(LocalChangeRefusedError);
    const port = a.home.matrixPort({
      userIdOf: () => Promise.resolve(account.userId),
      checkPassword: () => Promise.resolve(null),
      consumeLoginToken: () => Promise.resolve(null),
    });
    expect(port.homeId).toBe(a.home.peerId);
    const refused = await port.applyLocal(account.serverName, bad).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(MatrixError);
    expect((refused as MatrixError).errcode).toBe('M_BAD_JSON');
  });

  it('runs the room engine over its room store and exposes it on the Matrix port', async () => {
    const port = a.home.matrixPort({
      userIdOf: () => Promise.resolve(account.userId),
      checkPassword: () => Promise.resolve(null),
      consumeLoginToken: () => Promise.resolve(null),
    });
    expect(port.rooms).toBe(a.home.rooms);
    const actor = { serverName: account.serverName, userId: account.userId, deviceId: 'DEV' };
    const woken: string[][] = [];
    port.rooms!.onRoomEvents((servers) => woken.push(servers));
    const { roomId } = await port.rooms!.createRoom(actor, { invite: [], isDirect: false, initialState: [] });
    const { eventId } = await port.rooms!.send(actor, roomId, { type: 'm.room.message', content: { body: 'hi' } });
    const event = await port.rooms!.event(actor, roomId, eventId);
    expect(Object.keys(event.pdu.signatures[account.serverName]!)).toEqual([`ed25519:${a.home.peerId}`]);
    expect(woken.at(-1)).toEqual([account.serverName]);
    // The account's own join replicates as a member.set op carrying the signed event, for its other homes.
    const joined = (await a.store.state(account.serverName)).memberships[roomId];
    expect(joined).toMatchObject({ room_id: roomId, membership: 'join', event: { type: 'm.room.member' } });
  });

  it('will not revoke itself', async () => {
    await expect(a.home.removeHome(account.serverName, a.home.peerId, account.rootKey)).rejects.toBeInstanceOf(
      SelfRevocationError,
    );
  });

  it('adds a home by PeerId with its pairing code; the empty home it names takes the account in and gets its state', async () => {
    const adopted: string[] = [];
    c.home.on('adopted', ({ account: acct }) => adopted.push(acct));
    const { code } = (await pairing.read())!;
    const document = await a.home.addHome(
      account.serverName,
      { peerId: c.home.peerId, role: 'client', name: 'joiner', pairingCode: code.toLowerCase() },
      account.rootKey,
    );
    expect(document.homes.map((h) => h.peer_id)).toContain(c.home.peerId);
    // a dials the homes of the account it knows addresses of; c is reachable once a knows where.
    await a.home.host.dial(c.home.host.getMultiaddrs()[0]!);
    await waitFor(() => adopted.length > 0, 'the adoption on c');
    expect(adopted).toEqual([account.serverName]);
    expect(c.home.hosted()).toEqual([account.serverName]);
    // The code is spent.
    expect(await pairing.read()).toBeUndefined();
    const held = Object.keys((await a.store.state(account.serverName)).memberships).sort();
    // The four rooms of the earlier ops, and the room the engine test made (its join is a member.set too).
    expect(held).toHaveLength(5);
    await waitFor(
      async () =>
        JSON.stringify(Object.keys((await c.store.state(account.serverName)).memberships).sort()) ===
        JSON.stringify(held),
      'the state on c',
    );
  });

  it("refuses a stranger's account proven with a wrong code; the fifth wrong proof replaces the code", async () => {
    // A stranger's account whose document names b, which then names an empty joining home d.
    const stranger = makeAccount({ seed: 'libs-home-stranger', homes: 1, localpart: 'mallory' });
    const named = withHome(stranger, stranger.document, account.homes[1]!);
    await b.store.hostAccount(named, { custody: 'self' });
    await b.home.hostAccount(stranger.serverName);
    const code = newPairingCode();
    const pairing = new MemoryPairingCodeStore({ code, failures: PAIRING_MAX_FAILURES - 1 });
    const d = await runHome(makeHome('libs-home:joiner-2'), { adoptWhenEmpty: true, pairing });
    try {
      await d.home.start();
      const refused: string[] = [];
      d.home.on('adoption-refused', ({ account: acct, reason }) => refused.push(`${acct} ${reason}`));
      const wrong = code.startsWith('0') ? '11111-11111' : '00000-00000';
      await b.home.addHome(
        stranger.serverName,
        { peerId: d.home.peerId, role: 'client', name: 'joiner', pairingCode: wrong },
        stranger.rootKey,
      );
      await b.home.host.dial(d.home.host.getMultiaddrs()[0]!);
      await waitFor(() => refused.length > 0, 'the refusal on d', 120_000);
      expect(refused[0]).toBe(`${stranger.serverName} wrong-proof`);
      expect(d.home.hosted()).toEqual([]);
      const now = await pairing.read();
      expect(now?.failures).toBe(0);
      expect(now?.code).not.toBe(code);
    } finally {
      await d.close();
    }
  }, 240_000);

  it('announces a changed document through its queue job, and on demand', async () => {
    // addHome above changed the document: the Home queued an announcement, which put it in the DHT.
    const held = await a.store.document(account.serverName);
    await waitFor(async () => {
      const found = await c.home.discovery.fetchDocument(account.serverName, { signal: AbortSignal.timeout(5_000) });
      return found?.seq === held?.seq;
    }, 'the new document in the DHT');
    await a.home.announce(account.serverName);
  });

  it('keeps the seq of the documents it announced and looked up in its replay guard store', async () => {
    const held = await a.store.document(account.serverName);
    expect(held).toBeDefined();
    // a published the document, c looked it up: both pinned it in the SQL store they were given.
    await waitFor(async () => (await a.seqGuard.highestSeq(account.serverName)) === held!.seq, 'a pinned the seq');
    await waitFor(async () => (await c.seqGuard.highestSeq(account.serverName)) === held!.seq, 'c pinned the seq');
    // What a restart reads: the rows, not the memory of the store.
    const reopened = await SqlSeqGuardStore.open(a.storage.dataSource);
    expect(await reopened.highestSeq(account.serverName)).toBe(held!.seq);
  });

  it('marks and tags the homes of its accounts for the connection guard, and untags a revoked one', async () => {
    const guard = a.home.host.services.connectionGuard;
    const tagged = async (peerId: string): Promise<boolean> => {
      await guard.tagsWritten();
      const peer = (await a.home.host.peerStore.all()).find((p) => p.id.toString() === peerId);
      return peer?.tags.get(HOME_PEER_TAG)?.value === HOME_PEER_TAG_VALUE;
    };
    // b from the store at start, c from the document that added it; neither is the stranger.
    expect(guard.isHome(b.home.peerId)).toBe(true);
    expect(guard.isHome(c.home.peerId)).toBe(true);
    expect(await tagged(b.home.peerId)).toBe(true);
    expect(await tagged(c.home.peerId)).toBe(true);
    await a.home.removeHome(account.serverName, c.home.peerId, account.rootKey);
    expect(guard.isHome(c.home.peerId)).toBe(false);
    expect(await tagged(c.home.peerId)).toBe(false);
    expect(guard.isHome(b.home.peerId)).toBe(true);
  });

  it('stops once, after the background work', async () => {
    await b.home.stop();
    await b.home.stop();
    expect(b.home.isRunning()).toBe(false);
  });
});
