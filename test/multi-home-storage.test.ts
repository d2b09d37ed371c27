// Three homes of one account on real libp2p over TCP on 127.0.0.1, each on its own database: two on
// embedded PGlite (client homes) and one on PostgreSQL (the server home). Concurrent changes on every
// home converge; a home that was stopped (database closed, process state gone) resumes from its
// database and catches up; acknowledgements are recorded per peer.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPolyhomeHost, createSyncService, type PolyhomeHost, type SyncService } from '@polyhome/p2p';
import { openStorage, SqlReplicaStore, type Storage, type StorageBackend } from '@polyhome/storage';
import { createTestDatabase, type TestDatabase } from '@polyhome/storage/testing';
import { createOp, opHash, type Op, type OpKind } from '@polyhome/sync';
import { deviceBody, makeAccount, memberBody, type FixtureAccount, type FixtureHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@polyhome/p2p/testing';

interface Home {
  fixture: FixtureHome;
  db: TestDatabase;
  storage: Storage;
  store: SqlReplicaStore;
  host: PolyhomeHost;
  sync: SyncService;
  /** Ack writes not yet finished. */
  inFlight: Set<Promise<void>>;
  port: number;
}

describe('homes of one account on real libp2p, each on its own database', () => {
  let alice: FixtureAccount;
  const homes: Home[] = [];
  const backends: StorageBackend[] = ['postgres', 'pglite', 'pglite'];
  let scratch: string;

  async function startHome(fixture: FixtureHome, db: TestDatabase, port = 0): Promise<Home> {
    const storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    const store = new SqlReplicaStore(storage.dataSource);
    if ((await store.document(alice.serverName)) === undefined) {
      await store.hostAccount(alice.document, { custody: 'self' });
    }
    return startNetwork({ fixture, db, storage, store }, port);
  }

  async function startNetwork(home: Pick<Home, 'fixture' | 'db' | 'storage' | 'store'>, port = 0): Promise<Home> {
    const { fixture, db, storage, store } = home;
    const host = await createPolyhomeHost({
      nodeKey: fixture.secretKey,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      inboundConnectionThreshold: 10_000,
    });
    const sync = createSyncService(host);
    const inFlight = new Set<Promise<void>>();
    sync.on('acked', ({ account, peerId, vv }) => {
      const write = store.recordAck(account, peerId, vv).finally(() => inFlight.delete(write));
      inFlight.add(write);
    });
    await sync.start();
    await sync.host(alice.serverName, store);
    const addr = host.getMultiaddrs().find((a) => a.toString().startsWith('/ip4/127.0.0.1/'));
    return { fixture, db, storage, store, host, sync, inFlight, port: Number(addr?.toString().split('/')[4]) };
  }

  async function stopNetwork(home: Home): Promise<void> {
    await home.sync.stop();
    await home.host.stop();
    // Ack writes still running would otherwise hit a closed database.
    await Promise.all(home.inFlight);
  }

  async function stopHome(home: Home): Promise<void> {
    await stopNetwork(home);
    await home.storage.close();
  }

  /** A change made on a home as its Matrix API would: next seq and lamport from its database, signed, stored, pushed. */
  async function change(home: Home, kind: OpKind, key: string, body: Record<string, unknown>): Promise<Op> {
    const ctx = await home.store.localOpContext(alice.serverName, home.fixture.peerId);
    const op = createOp(
      {
        account: alice.serverName,
        origin: home.fixture.peerId,
        seq: ctx.seq,
        lamport: ctx.lamport,
        doc_seq: ctx.docSeq,
        ts: Date.now(),
        op: kind,
        key,
        body,
      },
      home.fixture.secretKey,
    );
    const result = await home.store.applyOps(alice.serverName, [op], home.fixture.peerId);
    expect(result.accepted).toHaveLength(1);
    home.sync.publish(alice.serverName, [op]);
    return op;
  }

  async function dialAll(): Promise<void> {
    for (const a of homes) {
      for (const b of homes) {
        if (a === b) continue;
        await a.host.dial(b.host.getMultiaddrs().find((m) => m.toString().startsWith('/ip4/127.0.0.1/'))!);
      }
    }
  }

  async function converged(): Promise<boolean> {
    const vvs = await Promise.all(homes.map((h) => h.store.versionVector(alice.serverName)));
    const states = await Promise.all(homes.map((h) => h.store.state(alice.serverName)));
    const first = JSON.stringify([vvs[0], states[0]]);
    return vvs.every((vv, i) => JSON.stringify([vv, states[i]]) === first);
  }

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-multi-'));
    alice = makeAccount({ seed: `multi-${process.pid}`, homes: 3 });
    for (const [i, backend] of backends.entries()) {
      const db = await createTestDatabase(backend);
      homes.push(await startHome(alice.homes[i]!, db));
    }
    await dialAll();
  });

  afterAll(async () => {
    for (const home of homes) await stopHome(home).catch(() => undefined);
    for (const home of homes) await home.db.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  it('converges after concurrent changes made on every home', async () => {
    await Promise.all(
      homes.map(async (home, i) => {
        for (let n = 0; n < 20; n++) {
          await change(home, 'device.put', `DEV${i}_${n}`, { ...deviceBody(alice, `DEV${i}_${n}`) });
          // Every home also writes the same keys, so last-writer-wins is exercised across databases.
          await change(home, 'member.set', `!shared${n % 5}:example`, {
            ...memberBody(`!shared${n % 5}:example`, i % 2 ? 'join' : 'leave'),
          });
        }
      }),
    );
    await waitFor(converged, 'all homes to hold the same ops and state');
    const state = await homes[0]!.store.state(alice.serverName);
    expect(Object.keys(state.devices)).toHaveLength(60);
    expect(Object.keys(state.memberships)).toHaveLength(5);
    const vv = await homes[0]!.store.versionVector(alice.serverName);
    expect(Object.values(vv)).toEqual([40, 40, 40]);
  });

  it('records what each peer acknowledged', async () => {
    const vv = await homes[0]!.store.versionVector(alice.serverName);
    await waitFor(
      async () => {
        const delivery = await homes[0]!.store.deliveryState(alice.serverName);
        return delivery.length === 2 && delivery.every((d) => JSON.stringify(d.ackedVv) === JSON.stringify(vv));
      },
      'acks of the two other homes to cover everything',
      20_000,
    ).catch(async (err: unknown) => {
      const delivery = await homes[0]!.store.deliveryState(alice.serverName);
      const sessions = homes[0]!.sync.sessions(alice.serverName);
      throw new Error(
        `${String(err)}; held ${JSON.stringify(vv)}; acked ${JSON.stringify(delivery.map((d) => [d.peerId, d.ackedVv]))}; sessions ${JSON.stringify(sessions)}`,
      );
    });
  });

  it('resumes a stopped home from its database and catches it up', async () => {
    const sleeper = homes[2]!;
    await stopHome(sleeper);
    for (let n = 0; n < 150; n++)
      await change(homes[n % 2]!, 'device.put', `LATE${n}`, { ...deviceBody(alice, `LATE${n}`) });
    await change(homes[0]!, 'device.delete', 'DEV2_0', {});

    const restarted = await startHome(sleeper.fixture, sleeper.db, sleeper.port);
    expect(restarted.host.peerId.toString()).toBe(sleeper.fixture.peerId);
    homes[2] = restarted;
    // What it held before it stopped came back from its own database.
    expect((await restarted.store.versionVector(alice.serverName))[sleeper.fixture.peerId]).toBe(40);
    await dialAll();
    await waitFor(converged, 'the restarted home to catch up');
    const state = await restarted.store.state(alice.serverName);
    expect(state.devices['LATE149']).toBeDefined();
    expect(state.devices['DEV2_0']).toBeUndefined();
  });

  it('finds and heals a split equivocation through the log digests the sessions exchange', async () => {
    // Home 0 signs two versions of one seq; home 1 gets one, home 2 (offline) the other. Their version
    // vectors agree, so only the digests can tell them apart.
    const liar = homes[0]!;
    const offline = homes[2]!;
    await stopNetwork(offline);
    const ctx = await liar.store.localOpContext(alice.serverName, liar.fixture.peerId);
    const version = (name: string) =>
      createOp(
        {
          account: alice.serverName,
          origin: liar.fixture.peerId,
          seq: ctx.seq,
          lamport: ctx.lamport,
          doc_seq: ctx.docSeq,
          ts: 1,
          op: 'device.put',
          key: 'SPLIT',
          body: { ...deviceBody(alice, 'SPLIT', { display_name: name }) },
        },
        liar.fixture.secretKey,
      );
    const [x, y] = [version('x'), version('y')];
    await liar.store.applyOps(alice.serverName, [x], liar.fixture.peerId);
    liar.sync.publish(alice.serverName, [x]);
    expect((await offline.store.applyOps(alice.serverName, [y], 'test')).accepted).toHaveLength(1);
    await waitFor(
      async () => (await homes[1]!.store.state(alice.serverName)).devices['SPLIT'] !== undefined,
      'home 1 to get x',
    );

    homes[2] = await startNetwork(offline, offline.port);
    await dialAll();
    await waitFor(async () => {
      const digests = await Promise.all(homes.map((h) => h.store.logDigests(alice.serverName)));
      return (await converged()) && digests.every((d) => JSON.stringify(d) === JSON.stringify(digests[0]));
    }, 'the three homes to agree on one version of the split seq');
    // The lower content hash holds the slot everywhere; every home that had held the other version keeps
    // it as evidence and flags the origin. (A home that only ever saw the winner need not have seen both.)
    const [winner, loser] = opHash(x) < opHash(y) ? ['x', [offline]] : ['y', [liar, homes[1]!]];
    for (const home of homes) {
      expect((await home.store.state(alice.serverName)).devices['SPLIT']).toMatchObject({ display_name: winner });
    }
    for (const home of loser) {
      expect(await home.store.equivocators(alice.serverName)).toEqual([{ origin: liar.fixture.peerId, ops: 1 }]);
    }
  });
});
