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
  MAX_EVIDENCE_PER_ORIGIN,
  MAX_PENDING_UNKNOWN_ORIGINS,
  PendingBudget,
  opHash,
  type CrossSigningUsage,
  type Op,
  type PendingLimits,
} from '@polyhome/sync';
import {
  MemoryReplicaStore,
  OpWriter,
  crossSigningKeys,
  groundOp,
  makeAccount,
  makeHome,
  networkAction,
  runNetwork,
  withHome,
  withoutHome,
  withCrossSigningMaster,
  writers,
  type FixtureAccount,
  type NetworkAction,
  type NetworkReplica,
  type RunStats,
} from '@polyhome/sync/testing';
import fc from 'fast-check';
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
  /** Ops of an account waiting in the store's pending buffer. */
  pendingCount(account: string): Promise<number>;
  /** Per origin with equivocation evidence, how many losing ops are kept. */
  equivocators(account: string): Promise<Array<{ origin: string; ops: number }>>;
  /** A store on the same data after a restart (undefined for a memory-only store). */
  reopen?(): Promise<StoreUnderTest>;
  teardown(): Promise<void>;
}

/** How to make a store: its pending caps, and the budget its accounts share. */
export interface StoreOptions {
  pendingLimits?: PendingLimits;
  pendingBudget?: PendingBudget;
}

/** How much of the suite's random testing to run on one implementation. */
export interface SuiteOptions {
  /** Seeded random network runs (default 30; SQL engines take fewer). */
  convergenceRuns?: number;
}

/** Seed of the random network runs: fixed, so every engine runs the same networks (SUITE_SEED overrides). */
const SUITE_SEED = Number(process.env['SUITE_SEED'] ?? 20261130);

/** Registers the suite for one implementation. */
export function replicaStoreSuite(
  name: string,
  setup: (options?: StoreOptions) => Promise<StoreUnderTest>,
  suiteOptions: SuiteOptions = {},
): void {
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
      if (sut.store.heads !== undefined) {
        expect(await sut.store.heads(account)).toEqual({
          vv: await sut.store.versionVector(account),
          digests: await sut.store.logDigests!(account),
        });
      }
      const state = await sut.state(account);
      expect(Object.keys(state.devices).sort()).toEqual(['A1', 'A2', 'B1']);
      expect(Object.keys(state.memberships)).toEqual(['!r:x']);
      expect(Object.keys(state.crossSigning)).toEqual(['master']);
    });

    it('keeps every character of an op and its value: quotes, backslashes, braces, commas, NULL and non-ASCII', async () => {
      const names = [
        'say "hi"',
        'back\\slash \\"',
        '{a,b}',
        'NULL',
        '',
        'Élise’s 日本語 💬',
        "it's; DROP TABLE op; --",
      ];
      const ops = names.map((name, i) => w0().devicePut(`Q${i}`, { display_name: name }));
      expect((await sut.store.applyOps(account, ops, from())).accepted).toHaveLength(ops.length);
      const back = await sut.store.opsMissing(account, {}, 100);
      expect(back).toEqual(ops);
      const state = await sut.state(account);
      names.forEach((name, i) => expect((state.devices[`Q${i}`] as { display_name?: string }).display_name).toBe(name));
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
      expect(await sut.state(account)).toEqual(emptyState());
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

    it("refuses another version of a revoked home's frozen log, however low its hash and high its lamport", async () => {
      const revokedHome = w[2]!;
      const ops = [revokedHome.devicePut('R1'), revokedHome.devicePut('R2')];
      await sut.store.applyOps(account, ops, from());
      const digest = (await sut.store.logDigests!(account))[revokedHome.home.peerId]!;
      const newer = withoutHome(alice, alice.document, revokedHome.home.peerId, { seq: 2, digest });
      await sut.store.offerDocument(account, newer, from());
      const before = await sut.state(account);
      // Before the pin, the lower hash took the slot: the rogue device replaced R1 on every replica.
      const rogue = groundOp(revokedHome, 1, 'ROGUE', ops.map(opHash));
      const result = await sut.store.applyOps(account, [rogue], from());
      expect(result.accepted).toEqual([]);
      expect(result.rejected.map((r) => [r.reason, r.detail])).toEqual([
        ['revoked', expect.stringContaining('the log held is the pinned one')],
      ]);
      expect(await sut.state(account)).toEqual(before);
      expect((await sut.store.logDigests!(account))[revokedHome.home.peerId]).toBe(digest);
      expect(await sut.equivocators(account)).toEqual([]);
    });

    const revokedRuns = Number(process.env['SUITE_CONVERGENCE_RUNS'] ?? suiteOptions.convergenceRuns ?? 30);
    it(
      `keeps a revoked home's log as its revocation pinned it, and replicas that held other versions converge on it (${revokedRuns} runs)`,
      { timeout: 60_000 + revokedRuns * 10_000 },
      async () => {
        const other = await setup();
        let run = 0;
        try {
          await fc.assert(
            fc.asyncProperty(
              fc.integer({ min: 1, max: 4 }),
              // Slots of which the second replica holds another version (the home equivocated before its revocation).
              fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
              // Versions ground by the revoked home: the slot, which replica gets it, and before or after they sync.
              fc.array(fc.record({ slot: fc.nat(3), second: fc.boolean(), early: fc.boolean() }), { maxLength: 4 }),
              async (n, split, attacks) => {
                const fixture = makeAccount({ seed: `suite-revoked-${run++}`, homes: 3 });
                const name = await sut.host(fixture.document);
                await other.host(fixture.document);
                const peer = fixture.homes[1]!.peerId;
                const revoked = new OpWriter(fixture, fixture.homes[2]!);
                const held: Op[] = [];
                const variants: Op[] = [];
                for (let i = 0; i < n; i++) {
                  const op = revoked.devicePut(`R${i}`);
                  revoked.seq -= 1;
                  revoked.lamport -= 1;
                  const variant = revoked.devicePut(`R${i}`, { display_name: 'other version' });
                  held.push(op);
                  variants.push(split[i] ? variant : op);
                }
                await sut.store.applyOps(name, held, peer);
                await other.store.applyOps(name, variants, peer);
                const digest = (await sut.store.logDigests!(name))[revoked.home.peerId]!;
                const document = withoutHome(fixture, fixture.document, revoked.home.peerId, { seq: n, digest });
                await sut.store.offerDocument(name, document, peer);
                await other.store.offerDocument(name, document, peer);
                const pinned = await sut.state(name);
                const hashes = [...held, ...variants].map(opHash);
                const rogue = attacks.map((a, k) => ({
                  ...a,
                  op: groundOp(revoked, (a.slot % n) + 1, `ROGUE${k}`, hashes),
                }));
                const attack = async (early: boolean): Promise<void> => {
                  for (const a of rogue.filter((x) => x.early === early)) {
                    await (a.second ? other : sut).store.applyOps(name, [a.op], peer);
                  }
                };
                await attack(true);
                // Anti-entropy as sessions do it on a digest mismatch: each sends the other its whole log.
                for (let round = 0; round < 2; round++) {
                  await other.store.applyOps(name, await sut.store.opsMissing(name, {}, 100), peer);
                  await sut.store.applyOps(name, await other.store.opsMissing(name, {}, 100), peer);
                }
                await attack(false);
                expect(await sut.state(name)).toEqual(pinned);
                expect(await other.state(name)).toEqual(pinned);
                expect(await other.store.logDigests!(name)).toEqual(await sut.store.logDigests!(name));
                expect((await sut.store.logDigests!(name))[revoked.home.peerId]).toBe(digest);
              },
            ),
            { numRuns: revokedRuns, seed: SUITE_SEED },
          );
        } finally {
          await other.teardown();
        }
      },
    );

    describe('cross-signing keys bound by the document', () => {
      const put = (writer: OpWriter, usage: CrossSigningUsage, body: object) =>
        writer.make('cross_signing.put', usage, { ...body });

      it('accepts the master key the document names and keys it signed; refuses any other with a reason', async () => {
        const keys = crossSigningKeys(alice, 'owner');
        const bound = withCrossSigningMaster(alice, alice.document, keys.master);
        expect((await sut.store.offerDocument(account, bound, from())).seq).toBe(bound.seq);
        const good = (['master', 'self_signing', 'user_signing'] as const).map((u) => put(w0(), u, keys.bodies[u]));
        expect((await sut.store.applyOps(account, good, from())).accepted).toHaveLength(3);

        // A rogue home: its own master key, keys signed by it, and an unsigned self-signing key.
        const rogue = crossSigningKeys(alice, 'rogue');
        const forged = crossSigningKeys(alice, 'owner', 'rogue');
        const unsigned = { ...keys.bodies.self_signing, signatures: {} };
        const attempts = [
          put(w1(), 'master', rogue.bodies.master),
          put(w1(), 'self_signing', rogue.bodies.self_signing),
          put(w1(), 'user_signing', forged.bodies.user_signing),
          put(w1(), 'self_signing', unsigned),
        ];
        for (const op of attempts) {
          const result = await sut.store.applyOps(account, [op], from());
          expect(result.accepted).toEqual([]);
          expect(result.rejected.map((r) => r.reason)).toEqual(['cross_signing']);
          w1().seq -= 1;
          w1().lamport -= 1;
        }
        expect((await sut.state(account)).crossSigning).toEqual(keys.bodies);
      });

      it('refuses a key waiting for a gap when a newer document names another master key', async () => {
        const first = crossSigningKeys(alice, 'first');
        const second = crossSigningKeys(alice, 'second');
        const bound = withCrossSigningMaster(alice, alice.document, first.master);
        await sut.store.offerDocument(account, bound, from());
        const gap = w0().devicePut('D1');
        const waiting = put(w0(), 'self_signing', first.bodies.self_signing);
        expect((await sut.store.applyOps(account, [waiting], from())).pending).toBe(1);
        await sut.store.offerDocument(account, withCrossSigningMaster(alice, bound, second.master), from());
        const result = await sut.store.applyOps(account, [gap], from());
        expect(result.accepted).toEqual([gap]);
        expect(result.rejected.map((r) => [r.reason, r.detail])).toEqual([
          [
            'cross_signing',
            expect.stringMatching(/no valid signature by the master key the document names .*\(document 5\)$/),
          ],
        ]);
        expect((await sut.state(account)).crossSigning).toEqual({});
        expect(await sut.pendingCount(account)).toBe(0);
      });

      it('binds nothing while the document names no master key (documents made before the binding)', async () => {
        const keys = crossSigningKeys(alice, 'legacy');
        const op = put(w1(), 'master', keys.bodies.master);
        expect((await sut.store.applyOps(account, [op], from())).accepted).toEqual([op]);
      });
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

    describe('caps (one pending buffer, evidence per origin)', () => {
      const limits: PendingLimits = { perOrigin: 4, total: 6, unknownOrigins: 2 };

      it('refuses pending ops beyond the per-origin and per-account caps with a reason, and loses nothing accepted', async () => {
        const small = await setup({ pendingLimits: limits });
        try {
          const name = await small.host(alice.document);
          const a = Array.from({ length: 7 }, (_, i) => w0().deviceDelete(`A${i}`));
          const b = Array.from({ length: 4 }, (_, i) => w1().deviceDelete(`B${i}`));
          const first = await small.store.applyOps(name, a.slice(1), from());
          expect(first.accepted).toEqual([]);
          expect(first.rejected.map((r) => [r.op, r.reason])).toEqual([
            [a[5], 'pending_full'],
            [a[6], 'pending_full'],
          ]);
          expect(first.rejected[0]!.detail).toMatch(/at most 4/);
          expect(first.dropped).toBe(2);
          expect(await small.pendingCount(name)).toBe(4);
          const second = await small.store.applyOps(name, b.slice(1), from());
          expect(second.rejected.map((r) => [r.op, r.reason])).toEqual([[b[3], 'pending_full']]);
          expect(second.rejected[0]!.detail).toMatch(/at most 6/);
          expect(await small.pendingCount(name)).toBe(6);
          // The gap fills: what waited is applied, and the refused ops, sent again, are taken.
          const filled = await small.store.applyOps(name, [a[0], ...a.slice(5), b[0], b[3]], from());
          expect(filled.accepted.map((o) => o.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4]);
          expect(filled.rejected).toEqual([]);
          expect(await small.pendingCount(name)).toBe(0);
          expect(await small.store.versionVector(name)).toEqual({ [w0().home.peerId]: 7, [w1().home.peerId]: 4 });
        } finally {
          await small.teardown();
        }
      });

      it(`holds ops of at most ${MAX_PENDING_UNKNOWN_ORIGINS} origins the document does not list, refuses the others with a reason`, async () => {
        const count = MAX_PENDING_UNKNOWN_ORIGINS + 3;
        const newcomers = Array.from({ length: count }, (_, i) => makeHome(`suite:newcomer:${i}`));
        // Each names the next document, which does not exist yet: it waits for it.
        const ops = newcomers.map((h) => new OpWriter(alice, h, alice.document.seq + 1).deviceDelete('N'));
        const result = await sut.store.applyOps(account, ops, from());
        expect(result.accepted).toEqual([]);
        expect(result.pending).toBe(MAX_PENDING_UNKNOWN_ORIGINS);
        expect(result.rejected.map((r) => [r.op, r.reason])).toEqual(
          ops.slice(MAX_PENDING_UNKNOWN_ORIGINS).map((op) => [op, 'pending_full']),
        );
        expect(await sut.pendingCount(account)).toBe(MAX_PENDING_UNKNOWN_ORIGINS);
        // The document naming them arrives: exactly the held ones apply.
        let document = alice.document;
        for (const h of newcomers) document = withHome(alice, document, h);
        await sut.store.offerDocument(account, document, from());
        expect(Object.keys(await sut.store.versionVector(account)).sort()).toEqual(
          newcomers
            .slice(0, MAX_PENDING_UNKNOWN_ORIGINS)
            .map((h) => h.peerId)
            .sort(),
        );
        expect(await sut.pendingCount(account)).toBe(0);
        const again = await sut.store.applyOps(account, ops.slice(MAX_PENDING_UNKNOWN_ORIGINS), from());
        expect(again.accepted).toHaveLength(count - MAX_PENDING_UNKNOWN_ORIGINS);
      });

      it('bounds the pending ops of all accounts of a store together, and frees the budget as they apply', async () => {
        const budget = new PendingBudget(3, 1024 * 1024);
        const shared = await setup({ pendingBudget: budget });
        try {
          const name = await shared.host(alice.document);
          const bob = makeAccount({ seed: 'suite-bob', homes: 2 });
          const bobName = await shared.host(bob.document);
          const a = Array.from({ length: 4 }, (_, i) => w0().deviceDelete(`A${i}`));
          const [bw] = writers(bob);
          const b = [bw!.deviceDelete('B0'), bw!.deviceDelete('B1')];
          expect((await shared.store.applyOps(name, a.slice(1), from())).pending).toBe(3);
          expect(budget.ops).toBe(3);
          const refused = await shared.store.applyOps(bobName, [b[1]], bob.homes[1]!.peerId);
          expect(refused.rejected.map((r) => r.reason)).toEqual(['pending_full']);
          expect(refused.rejected[0]!.detail).toMatch(/the store holds 3 waiting ops/);
          expect(await shared.pendingCount(bobName)).toBe(0);
          await shared.store.applyOps(name, [a[0]], from());
          expect(budget.ops).toBe(0);
          expect((await shared.store.applyOps(bobName, [b[1]], bob.homes[1]!.peerId)).pending).toBe(1);
          expect(budget.ops).toBe(1);
          expect(budget.bytes).toBeGreaterThan(0);
        } finally {
          await shared.teardown();
        }
      });

      it(`records a conflicting pending op as an equivocation, as for a held one`, async () => {
        const origin = w0();
        const first = origin.deviceDelete('P0');
        const x = origin.deviceDelete('PX');
        origin.seq -= 1;
        const y = origin.deviceDelete('PY');
        expect((await sut.store.applyOps(account, [x], from())).pending).toBe(1);
        const conflict = await sut.store.applyOps(account, [y], from());
        expect(conflict.rejected).toEqual([]);
        expect(conflict.equivocations).toEqual([expect.objectContaining({ origin: origin.home.peerId, seq: 2 })]);
        expect(await sut.equivocators(account)).toEqual([{ origin: origin.home.peerId, ops: 1 }]);
        expect(await sut.pendingCount(account)).toBe(1);
        // Both versions again: one waits, the other is kept as evidence; neither is new.
        const again = await sut.store.applyOps(account, [x, y], from());
        expect(again.rejected.map((r) => r.reason)).toEqual(['duplicate', 'duplicate']);
        const filled = await sut.store.applyOps(account, [first], from());
        const lower = [x, y].sort((p, q) => (opHash(p) < opHash(q) ? -1 : 1))[0]!;
        expect(filled.accepted.map(opHash)).toEqual([opHash(first), opHash(lower)]);
        expect(await sut.pendingCount(account)).toBe(0);
      });

      it(`keeps at most ${MAX_EVIDENCE_PER_ORIGIN} ops of evidence per origin, and still picks every slot's holder`, async () => {
        const n = MAX_EVIDENCE_PER_ORIGIN + 6;
        const home = alice.homes[0]!;
        const honest = new OpWriter(alice, home);
        const liar = new OpWriter(alice, home);
        const ops: Op[] = [];
        for (let i = 0; i < n; i++) ops.push(honest.deviceDelete(`H${i}`));
        const forks: Op[] = [];
        for (let i = 0; i < n; i++) forks.push(liar.deviceDelete(`L${i}`));
        await sut.store.applyOps(account, ops, from());
        const result = await sut.store.applyOps(account, forks, from());
        expect(result.equivocations).toHaveLength(n);
        expect(await sut.equivocators(account)).toEqual([{ origin: home.peerId, ops: MAX_EVIDENCE_PER_ORIGIN }]);
        const reference = new MemoryReplicaStore();
        reference.host(alice.document);
        await reference.applyOps(account, forks, from());
        await reference.applyOps(account, ops, from());
        expect(await sut.store.logDigests?.(account)).toEqual(await reference.logDigests(account));
        expect(await sut.store.opsMissing(account, {}, 2 * n)).toEqual(await reference.opsMissing(account, {}, 2 * n));
      });
    });

    const runs = Number(process.env['SUITE_CONVERGENCE_RUNS'] ?? suiteOptions.convergenceRuns ?? 30);
    it(
      `converges on ${runs} seeded random networks (drop, duplicate, reorder, partition, equivocation, revocation)`,
      { timeout: 60_000 + runs * 15_000 },
      async () => {
        // Four stores, one per home, reused by every run (each run is a fresh account).
        const stores: StoreUnderTest[] = [];
        let run = 0;
        const totals: RunStats = { ops: 0, revocations: 0, equivocations: 0, deliveries: 0 };
        try {
          for (let i = 0; i < 4; i++) stores.push(await setup());
          await fc.assert(
            fc.asyncProperty(
              fc.integer({ min: 3, max: 4 }),
              // Each run ends with an op, an equivocation and a revocation, so even few runs cover them all.
              fc
                .array(networkAction, { minLength: 10, maxLength: 60, size: 'max' })
                .map((actions): NetworkAction[] => [
                  ...actions,
                  { t: 'op', r: 0, kind: 0, key: 0, variant: 0 },
                  { t: 'equivocate', r: 0, into: 1, back: 0, key: 1 },
                  { t: 'revoke', remover: 1, target: 2 },
                ]),
              async (homes, actions) => {
                const fixture = makeAccount({ seed: `suite-network-${run++}`, homes });
                const replicas: NetworkReplica[] = [];
                for (const s of stores.slice(0, homes)) {
                  await s.host(fixture.document);
                  replicas.push({
                    store: s.store,
                    state: (name) => s.state(name),
                    pendingCount: (name) => s.pendingCount(name),
                    flaggedOrigins: async (name) => (await s.equivocators(name)).map((e) => e.origin),
                  });
                }
                const stats = await runNetwork(fixture, replicas, actions);
                for (const key of Object.keys(totals) as Array<keyof RunStats>) totals[key] += stats[key];
              },
            ),
            { numRuns: runs, seed: SUITE_SEED, verbose: 1 },
          );
          // The seeded runs did go through what they claim to test.
          expect(totals.revocations).toBeGreaterThan(0);
          expect(totals.equivocations).toBeGreaterThan(0);
          expect(totals.deliveries).toBeGreaterThan(runs);
        } finally {
          for (const s of stores) await s.teardown();
        }
      },
    );
  });
}
