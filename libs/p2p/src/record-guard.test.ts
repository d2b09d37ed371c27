// The DHT replay guard (issue 13, item 7): over real kad-dht nodes on 127.0.0.1, an older signed document
// replayed after more filler records than the guard's cache holds is refused, and a guard backed by a file
// still refuses it after a restart that emptied the DHT's own store.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Libp2pRecord } from '@libp2p/record';
import type { AccountDocument } from '@polyhome/identity';
import { makeAccount, makeHome, withHome, withoutHome } from '@polyhome/sync/testing';
import { Key } from 'interface-datastore';
import { base32 } from 'multiformats/bases/base32';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SeqGuardStoreError, StaleRecordError } from './errors.js';
import { AccountRecordGuard, FileSeqGuardStore, GuardedRecordDatastore } from './record-guard.js';
import { accountRecordKey, encodeAccountRecord } from './records.js';
import {
  freePort,
  putDhtRecord,
  recordingLogger,
  startNode,
  waitFor,
  waitForDhtPeers,
  type TestNode,
} from './testing/index.js';

const guardOf = (node: TestNode) => node.host.services.recordGuard;

describe('DHT replay guard over real kad-dht nodes', () => {
  // Seq 2 lists two homes; seq 3 revokes the second one. The replay brings the revoked home back.
  const account = makeAccount({ seed: 'guard', homes: 2 });
  const revoked = account.homes[1]!.peerId;
  const old = account.document;
  const current = withoutHome(account, old, revoked, 0);
  const CACHE = 8;
  const FILLER = 3 * CACHE;
  const nodes: TestNode[] = [];
  let home: TestNode, keeper: TestNode, far: TestNode, attacker: TestNode;

  beforeAll(async () => {
    const recordGuard = { maxAccounts: CACHE };
    home = await startNode({ nodeKey: account.homes[0]!.secretKey, recordGuard });
    nodes.push(home);
    keeper = await startNode({ nodeKey: makeHome('guard:keeper').secretKey, bootstrap: [home.addr], recordGuard });
    nodes.push(keeper);
    far = await startNode({
      nodeKey: makeHome('guard:far').secretKey,
      bootstrap: [home.addr, keeper.addr],
      recordGuard,
    });
    nodes.push(far);
    await waitForDhtPeers(keeper, [home.host.peerId, far.host.peerId]);
    await waitForDhtPeers(home, [keeper.host.peerId, far.host.peerId]);
    await waitForDhtPeers(far, [home.host.peerId, keeper.host.peerId]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map(async (n) => n.stop()));
  });

  it(`refuses a replayed older document after ${FILLER} filler records (cache of ${CACHE}), and lookups return the newest`, async () => {
    await home.discovery.publishDocument(old);
    await home.discovery.publishDocument(current);
    await waitFor(() => guardOf(keeper).storedSeq(account.serverName) === current.seq, 'keeper stores seq 3');
    await waitFor(() => guardOf(far).storedSeq(account.serverName) === current.seq, 'far stores seq 3');

    // The attacker joins after the publication, so its own store has nothing of the account.
    attacker = await startNode({
      nodeKey: makeHome('guard:attacker').secretKey,
      bootstrap: [home.addr, keeper.addr, far.addr],
    });
    nodes.push(attacker);
    await waitForDhtPeers(attacker, [home.host.peerId, keeper.host.peerId, far.host.peerId]);

    let fillerStored = 0;
    for (let i = 0; i < FILLER; i++) {
      fillerStored += (await putDhtRecord(attacker, makeAccount({ seed: `guard:filler:${i}`, homes: 1 }).document))
        .stored;
    }
    // The filler went in, and it pushed the account out of every node's cache: only the store holds seq 3 now.
    expect(fillerStored).toBeGreaterThanOrEqual(FILLER * 3);
    for (const node of [keeper, far]) {
      expect(guardOf(node).cachedSeq(account.serverName)).toBeUndefined();
      expect(await guardOf(node).guardedSeq(account.serverName)).toBeUndefined();
    }

    const replay = await putDhtRecord(attacker, old);
    expect(replay.stored).toBe(0);
    expect(replay.refused).toBeGreaterThanOrEqual(3);
    for (const node of [home, keeper, far]) expect(guardOf(node).storedSeq(account.serverName)).toBe(current.seq);

    const found = await far.discovery.lookup(account.userId);
    expect(found.document.seq).toBe(current.seq);
    expect(found.document.homes.map((h) => h.peer_id)).not.toContain(revoked);
    // The lookup pinned the account on `far`: its guard now holds seq 3 beyond the cache.
    expect(await guardOf(far).guardedSeq(account.serverName)).toBe(current.seq);
    expect((await attacker.discovery.fetchDocument(account.serverName))?.seq).toBe(current.seq);
    // A home republishing an outdated document (its database behind the DHT) is not an error, and changes nothing.
    expect(await home.discovery.publishDocument(old)).toBe(0);
    expect(guardOf(home).storedSeq(account.serverName)).toBe(current.seq);
  }, 120_000);
});

describe('DHT replay guard across a restart', () => {
  const account = makeAccount({ seed: 'guard-restart', homes: 2 });
  const revoked = account.homes[1]!.peerId;
  const old = account.document;
  const current = withoutHome(account, old, revoked, 0);
  const running: TestNode[] = [];
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'polyhome-guard-'));
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async (n) => n.stop()));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a file-backed guard refuses the replay after a restart; an in-memory one, restarted alike, takes it', async () => {
    const file = join(dir, 'dht-seq-guard.json');
    const [persistentKey, volatileKey] = [makeHome('guard:persistent').secretKey, makeHome('guard:volatile').secretKey];
    const [persistentPort, volatilePort] = [await freePort(), await freePort()];
    const home = await startNode({ nodeKey: account.homes[0]!.secretKey });
    running.push(home);
    let persistent = await startNode({
      nodeKey: persistentKey,
      port: persistentPort,
      bootstrap: [home.addr],
      recordGuard: { store: await FileSeqGuardStore.open(file) },
    });
    running.push(persistent);
    let volatile = await startNode({ nodeKey: volatileKey, port: volatilePort, bootstrap: [home.addr] });
    running.push(volatile);
    await waitForDhtPeers(home, [persistent.host.peerId, volatile.host.peerId]);

    await home.discovery.publishDocument(old);
    await home.discovery.publishDocument(current);
    // Both nodes look the account up (pinning it), and hold seq 3 in their DHT store.
    for (const node of [persistent, volatile]) {
      expect((await node.discovery.fetchDocument(account.serverName))?.seq).toBe(current.seq);
      await waitFor(() => guardOf(node).storedSeq(account.serverName) === current.seq, 'seq 3 stored');
    }
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as { seqs: Record<string, number> };
    expect(onDisk.seqs[account.serverName]).toBe(current.seq);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    // Restart both on the same key and port: the DHT store and the cache are empty again.
    for (const node of [persistent, volatile]) {
      running.splice(running.indexOf(node), 1);
      await node.stop();
    }
    persistent = await startNode({
      nodeKey: persistentKey,
      port: persistentPort,
      recordGuard: { store: await FileSeqGuardStore.open(file) },
    });
    running.push(persistent);
    volatile = await startNode({ nodeKey: volatileKey, port: volatilePort });
    running.push(volatile);
    expect(guardOf(persistent).storedSeq(account.serverName)).toBeUndefined();
    expect(guardOf(volatile).storedSeq(account.serverName)).toBeUndefined();

    // The attacker talks to the two restarted nodes only (the home is gone).
    running.splice(running.indexOf(home), 1);
    await home.stop();
    const attacker = await startNode({
      nodeKey: makeHome('guard:restart-attacker').secretKey,
      bootstrap: [persistent.addr, volatile.addr],
    });
    running.push(attacker);
    await waitForDhtPeers(attacker, [persistent.host.peerId, volatile.host.peerId]);
    const replay = await putDhtRecord(attacker, old);

    // Without a persistent guard the replay is taken (the attack is real); with the file it is refused.
    expect(guardOf(volatile).storedSeq(account.serverName)).toBe(old.seq);
    expect(guardOf(persistent).storedSeq(account.serverName)).toBeUndefined();
    expect(replay.stored).toBe(1);
    // The restarted node's own lookup refuses the replayed record wherever it comes from.
    expect(await persistent.discovery.fetchDocument(account.serverName, { timeout: 5_000 })).toBeUndefined();
    // The newest document is taken as soon as it is offered again.
    expect((await putDhtRecord(attacker, current)).stored).toBe(2);
    expect(guardOf(persistent).storedSeq(account.serverName)).toBe(current.seq);
    expect(guardOf(volatile).storedSeq(account.serverName)).toBe(current.seq);
  }, 120_000);
});

describe('GuardedRecordDatastore and FileSeqGuardStore', () => {
  const account = makeAccount({ seed: 'guard-unit', homes: 1 });
  const v1 = account.document;
  const v2 = withHome(account, v1, makeHome('guard-unit:laptop'));
  const key = accountRecordKey(account.serverName);
  const dsKey = new Key(`/dht/record/${base32.baseEncode(key)}`);
  const record = (document: AccountDocument): Uint8Array =>
    new Libp2pRecord(key, encodeAccountRecord(document), new Date()).serialize();

  it('never lets an older document replace a newer one under the same key; newer and equal ones go in', () => {
    const store = new GuardedRecordDatastore();
    store.put(dsKey, record(v1));
    store.put(dsKey, record(v2));
    expect(() => store.put(dsKey, record(v1))).toThrow(StaleRecordError);
    expect(() => store.put(dsKey, record(v2))).not.toThrow();
    expect(store.record(key)).toEqual(encodeAccountRecord(v2));
    // Other keys (peer store, providers) are not compared.
    const other = new Key('/peers/abc');
    store.put(other, new Uint8Array([2]));
    store.put(other, new Uint8Array([1]));
    expect(store.get(other)).toEqual(new Uint8Array([1]));
  });

  it('keeps a value that is a view into a larger buffer as a copy of its own bytes (not the whole buffer)', () => {
    const store = new GuardedRecordDatastore();
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const key = new Key('/peers/view');
    store.put(key, chunk.subarray(100, 110));
    const held = store.get(key);
    expect(held).toEqual(new Uint8Array(10).fill(7));
    expect(held.buffer.byteLength).toBe(10);
    // A value that owns its buffer is kept as given.
    const own = new Uint8Array([1, 2, 3]);
    store.put(key, own);
    expect(store.get(key)).toBe(own);
  });

  it('a store that fails: a read refuses the record, a write of a newer seq is logged and the record taken', async () => {
    const log = recordingLogger();
    const failing = {
      highestSeq: async () => 1,
      remember: async () => {
        throw new Error('disk full');
      },
    };
    const guard = new AccountRecordGuard({ store: failing, logger: log });
    await expect(guard.validate(key, encodeAccountRecord(v2))).resolves.toBeUndefined();
    expect(log.entries.map((e) => [e.level, e.msg])).toEqual([
      ['warn', 'DHT replay guard did not remember a newer seq'],
    ]);
    expect(guard.cachedSeq(account.serverName)).toBe(v2.seq);
    await expect(guard.validate(key, encodeAccountRecord(v1))).rejects.toThrow(/rollback/);
    const unreadable = new AccountRecordGuard({
      store: {
        highestSeq: async () => {
          throw new Error('database down');
        },
        remember: async () => undefined,
      },
    });
    await expect(unreadable.validate(key, encodeAccountRecord(v2))).rejects.toThrow(/database down/);
  });

  it('the file store keeps the highest seq, refuses a damaged file, and writes mode 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'polyhome-guard-file-'));
    try {
      const file = join(dir, 'sub', 'guard.json');
      const store = await FileSeqGuardStore.open(file);
      await Promise.all([store.remember(account.serverName, 5), store.remember(account.serverName, 3)]);
      expect(await store.highestSeq(account.serverName)).toBe(5);
      expect(await (await FileSeqGuardStore.open(file)).highestSeq(account.serverName)).toBe(5);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      await writeFile(file, '{"version":1,"seqs":{"x":1}}');
      await expect(FileSeqGuardStore.open(file)).rejects.toBeInstanceOf(SeqGuardStoreError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
