// One behaviour suite for every ReplicaStore: written once, run against the in-memory reference store of
// @polyhome/sync and against the SQL store on PostgreSQL and on PGlite (in the manner of libp2p's
// interface-compliance tests). The stores must agree on every outcome, not only on the happy path.
import type { AccountDocument } from '@polyhome/identity';
import {
  OP_KINDS,
  OP_KIND_LIST,
  emptyState,
  isTombstone,
  putState,
  type ReplicaStore,
  type StateRecords,
} from '@polyhome/sync';
import {
  MemoryReplicaStore,
  OpWriter,
  makeAccount,
  makeHome,
  withoutHome,
  writers,
  type FixtureAccount,
} from '@polyhome/sync/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** The replicated state as both stores report it: one record per state field of the op-kind registry. */
export type SuiteState = StateRecords<unknown>;

/** What a store under test provides besides the port. */
export interface StoreUnderTest {
  store: ReplicaStore;
  /** Starts hosting the account of a document; returns its server name. */
  host(document: AccountDocument): Promise<string>;
  /** The materialized state of an account. */
  state(account: string): Promise<SuiteState>;
  /** A store on the same data after a restart (undefined for a memory-only store). */
  reopen?(): Promise<StoreUnderTest>;
  teardown(): Promise<void>;
}

/** Registers the suite for one implementation. */
export function replicaStoreSuite(name: string, setup: () => Promise<StoreUnderTest>): void {
  describe(`replica store compliance: ${name}`, () => {
    let sut: StoreUnderTest;
    let alice: FixtureAccount;
    let account: string;
    let w: OpWriter[];

    beforeEach(async () => {
      sut = await setup();
      alice = makeAccount({ seed: 'suite', homes: 3 });
      account = await sut.host(alice.document);
      w = writers(alice);
    });
    afterEach(async () => {
      await sut?.teardown();
    });

    const from = () => alice.homes[1]!.peerId;
    const w0 = () => w[0]!;
    const w1 = () => w[1]!;

    it('knows the document of a hosted account and nothing of others', async () => {
      expect(account).toBe(alice.serverName);
      expect((await sut.store.document(account))?.seq).toBe(alice.document.seq);
      expect(await sut.store.document('f'.repeat(64))).toBeUndefined();
      expect(await sut.store.versionVector(account)).toEqual({});
      await expect(sut.store.applyOps('f'.repeat(64), [], from())).rejects.toMatchObject({ code: 'UNKNOWN_ACCOUNT' });
    });

    it('applies ops in order and serves what a peer lacks in per-origin seq order, bounded', async () => {
      const a = [w0().devicePut('A1'), w0().devicePut('A2'), w0().memberSet('!r:x', 'join')];
      const b = [w1().devicePut('B1'), w1().crossSigningPut('master')];
      const result = await sut.store.applyOps(account, [...a, ...b], from());
      expect(result.accepted).toHaveLength(5);
      expect(result.rejected).toEqual([]);
      expect(await sut.store.versionVector(account)).toEqual({ [w0().home.peerId]: 3, [w1().home.peerId]: 2 });
      const missing = await sut.store.opsMissing(account, { [w0().home.peerId]: 1 }, 100);
      expect(missing.filter((o) => o.origin === w0().home.peerId).map((o) => o.seq)).toEqual([2, 3]);
      expect(missing.filter((o) => o.origin === w1().home.peerId).map((o) => o.seq)).toEqual([1, 2]);
      expect(await sut.store.opsMissing(account, {}, 2)).toHaveLength(2);
      const state = await sut.state(account);
      expect(Object.keys(state.devices).sort()).toEqual(['A1', 'A2', 'B1']);
      expect(Object.keys(state.memberships)).toEqual(['!r:x']);
      expect(Object.keys(state.crossSigning)).toEqual(['master']);
    });

    it('holds ops after a gap and applies them when the gap fills', async () => {
      const ops = [w0().devicePut('D1'), w0().devicePut('D2'), w0().devicePut('D3')];
      const early = await sut.store.applyOps(account, [ops[2], ops[1]], from());
      expect(early.accepted).toEqual([]);
      expect(early.pending).toBe(2);
      expect(await sut.store.versionVector(account)).toEqual({});
      const filled = await sut.store.applyOps(account, [ops[0]], from());
      expect(filled.accepted.map((o) => o.seq)).toEqual([1, 2, 3]);
      expect(filled.pending).toBe(0);
      expect(await sut.store.versionVector(account)).toEqual({ [w0().home.peerId]: 3 });
    });

    it('treats a duplicate as a no-op', async () => {
      const op = w0().devicePut('DUP');
      await sut.store.applyOps(account, [op], from());
      const again = await sut.store.applyOps(account, [op, structuredClone(op)], from());
      expect(again.accepted).toEqual([]);
      expect(again.rejected.map((r) => r.reason)).toEqual(['duplicate', 'duplicate']);
      expect(await sut.store.versionVector(account)).toEqual({ [w0().home.peerId]: 1 });
    });

    it('lets the greatest (lamport, origin) win per key, and keeps deletes as tombstones', async () => {
      const older = w1().devicePut('K', { display_name: 'old' });
      w0().observe(older.lamport);
      const newer = w0().devicePut('K', { display_name: 'new' });
      await sut.store.applyOps(account, [newer], from());
      await sut.store.applyOps(account, [older], from());
      expect((await sut.state(account)).devices['K']).toMatchObject({ display_name: 'new' });

      w1().observe(newer.lamport);
      const del = w1().deviceDelete('K');
      await sut.store.applyOps(account, [del], from());
      expect((await sut.state(account)).devices['K']).toBeUndefined();
      // An older put arriving late cannot resurrect the device.
      const late = w[2]!.devicePut('K');
      const result = await sut.store.applyOps(account, [late], from());
      expect(result.accepted).toHaveLength(1);
      expect((await sut.state(account)).devices['K']).toBeUndefined();
    });

    it('refuses ops from a home not in the document, forged signatures, and other signed types', async () => {
      const stranger = new OpWriter(alice, makeHome('suite:stranger'));
      const genuine = w0().devicePut('F');
      const forged = { ...genuine, body: { ...genuine.body, display_name: 'forged' } };
      const result = await sut.store.applyOps(account, [stranger.devicePut('S'), forged, alice.document], from());
      expect(result.accepted).toEqual([]);
      expect(result.rejected.map((r) => r.reason)).toEqual(['unknown_origin', 'bad_signature', 'wrong_type']);
      expect(await sut.store.versionVector(account)).toEqual({});
      expect(await sut.state(account)).toEqual({ devices: {}, memberships: {}, crossSigning: {} });
    });

    it('retracts ops above the cutoff of a revoked home, refuses later ones, and keeps the document against a replay', async () => {
      const revokedHome = w[2]!;
      await sut.store.applyOps(account, [revokedHome.devicePut('R1'), revokedHome.devicePut('R2')], from());
      const newer = withoutHome(alice, alice.document, revokedHome.home.peerId, 1);
      expect((await sut.store.offerDocument(account, newer, from())).seq).toBe(newer.seq);
      // R2 was accepted before the revocation was known; it is above the cutoff, so it goes.
      expect(await sut.store.versionVector(account)).toEqual({ [revokedHome.home.peerId]: 1 });
      expect(Object.keys((await sut.state(account)).devices)).toEqual(['R1']);
      const after = await sut.store.applyOps(account, [revokedHome.devicePut('R3')], from());
      expect(after.rejected.map((r) => r.reason)).toEqual(['revoked']);
      // The older document, replayed, changes nothing.
      expect((await sut.store.offerDocument(account, alice.document, from())).seq).toBe(newer.seq);
      expect((await sut.store.document(account))?.seq).toBe(newer.seq);
    });

    it('reports the same log digests as the in-memory reference for the same ops', async () => {
      if (!sut.store.logDigests) throw new Error('store does not report log digests');
      const reference = new MemoryReplicaStore();
      reference.host(alice.document);
      const ops = [w0().devicePut('G1'), w1().devicePut('G2'), w0().memberSet('!g:x', 'join')];
      await sut.store.applyOps(account, ops, from());
      await reference.applyOps(account, ops, from());
      expect(await sut.store.logDigests(account)).toEqual(await reference.logDigests(account));
      expect(Object.keys(await sut.store.logDigests(account))).toHaveLength(2);
    });

    it('keeps both ops of an equivocation, lets the lower hash hold the slot, whatever the order', async () => {
      const origin = w0();
      const x = origin.devicePut('E', { display_name: 'x' });
      origin.seq -= 1;
      origin.lamport -= 1;
      const y = origin.devicePut('E', { display_name: 'y' });
      const first = await sut.store.applyOps(account, [x], from());
      expect(first.accepted).toHaveLength(1);
      const second = await sut.store.applyOps(account, [y], from());
      expect(second.equivocations).toEqual([expect.objectContaining({ origin: origin.home.peerId, seq: 1 })]);
      const stateXY = await sut.state(account);

      const other = await setup();
      try {
        const otherAccount = await other.host(alice.document);
        await other.store.applyOps(otherAccount, [y], from());
        const reversed = await other.store.applyOps(otherAccount, [x], from());
        expect(reversed.equivocations).toHaveLength(1);
        expect(await other.state(otherAccount)).toEqual(stateXY);
        expect(await other.store.versionVector(otherAccount)).toEqual(await sut.store.versionVector(account));
        expect(await other.store.opsMissing(otherAccount, {}, 10)).toEqual(await sut.store.opsMissing(account, {}, 10));
        expect(await other.store.logDigests?.(otherAccount)).toEqual(await sut.store.logDigests?.(account));
      } finally {
        await other.teardown();
      }
    });

    it('materialises an op of every registered kind into its state field, hides what a tombstone covers, over a restart', async () => {
      const puts = OP_KIND_LIST.filter((k) => !isTombstone(k)).map((k) => w0().sample(k));
      const tombstones = OP_KIND_LIST.filter(isTombstone).map((k) => w1().observe(w0().lamport).sample(k));
      expect((await sut.store.applyOps(account, puts, from())).accepted).toEqual(puts);
      const expected = emptyState<unknown>();
      for (const op of puts) putState(expected, OP_KINDS[op.op].field, op.key, op.body);
      expect(await sut.state(account)).toEqual(expected);

      expect((await sut.store.applyOps(account, tombstones, from())).accepted).toEqual(tombstones);
      for (const op of tombstones) {
        const field = expected[OP_KINDS[op.op].field];
        expect(Object.hasOwn(field, op.key)).toBe(true);
        delete field[op.key];
      }
      expect(await sut.state(account)).toEqual(expected);
      // The ops come back as they went in: nothing of the wire format depends on the registry's derivations.
      const held = await sut.store.opsMissing(account, {}, 100);
      expect(held).toHaveLength(puts.length + tombstones.length);
      expect(held).toEqual(expect.arrayContaining([...puts, ...tombstones]));
      if (!sut.reopen) return;
      sut = await sut.reopen();
      expect(await sut.state(account)).toEqual(expected);
    });

    it('keeps a device id "__proto__" a key of the state', async () => {
      await sut.store.applyOps(account, [w0().devicePut('__proto__')], from());
      const { devices } = await sut.state(account);
      expect(Object.keys(devices)).toEqual(['__proto__']);
      expect(Object.getPrototypeOf(devices)).toBe(Object.prototype);
    });

    it('resumes exactly where it left off after a restart', async () => {
      if (!sut.reopen) return;
      const ops = [w0().devicePut('P1'), w1().memberSet('!room:y', 'join'), w0().devicePut('P3')];
      await sut.store.applyOps(account, ops, from());
      const vv = await sut.store.versionVector(account);
      const state = await sut.state(account);
      sut = await sut.reopen();
      expect(await sut.store.versionVector(account)).toEqual(vv);
      expect(await sut.state(account)).toEqual(state);
      const next = await sut.store.applyOps(account, [w0().devicePut('P4')], from());
      expect(next.accepted).toHaveLength(1);
    });
  });
}
