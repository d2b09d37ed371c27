// Convergence in the manner of Yjs's random tests, with fast-check, over any ReplicaStore: 3 to 7 homes of
// one account make random ops while a simulated network of sync sessions delivers, drops, duplicates and
// reorders messages, partitions and heals, disconnects and reconnects; homes equivocate and are revoked.
// After healing and a final full exchange, every replica must hold the same state and version vector.
// Written once, run on the in-memory replica (libs/sync) and on the SQL store on PostgreSQL and PGlite (the
// store compliance suite of libs/storage). fast-check prints `seed` and `path` of a failing run.
import fc from 'fast-check';
import { expect } from 'vitest';
import { revokedCutoff, type AccountDocument } from '@polyhome/identity';
import { DocumentRejectedError } from '../errors.js';
import {
  admissionError,
  failSession,
  generate,
  initSession,
  opsRequest,
  receive,
  type SessionState,
} from '../session.js';
import type { CrossSigningUsage, Membership, Op, OpKind, ReplicaStore, SyncMessage } from '../types.js';
import { wire } from './driver.js';
import { crossSigningBody, deviceBody, OpWriter, withoutHome, type FixtureAccount } from './fixtures.js';

/** One replica of the account as the network drives it: a store and what the checks read from it. */
export interface NetworkReplica {
  store: ReplicaStore;
  /** The materialized state (compared between replicas). */
  state(account: string): Promise<unknown>;
  /** Ops waiting in the store's pending buffer. */
  pendingCount(account: string): Promise<number>;
  /** Origins the store holds equivocation evidence of. */
  flaggedOrigins(account: string): Promise<string[]>;
}

/** One step of a random run. */
export type NetworkAction =
  | { t: 'op'; r: number; kind: number; key: number; variant: number }
  | { t: 'connect'; a: number; b: number }
  | { t: 'disconnect'; a: number; b: number }
  | { t: 'deliver'; link: number; dir: boolean; pick: number; mode: 'once' | 'dup' | 'drop' }
  | { t: 'partition'; mask: number }
  | { t: 'heal' }
  | { t: 'revoke'; remover: number; target: number }
  | { t: 'flush'; link: number }
  | { t: 'equivocate'; r: number; into: number; back: number; key: number };

const MEMBERSHIPS: Membership[] = ['join', 'leave', 'invite', 'ban', 'knock'];
const USAGES: CrossSigningUsage[] = ['master', 'self_signing', 'user_signing'];
/** Bound on messages one pump may produce; the session's own window keeps real pumps far below it. */
const MAX_PUMP = 64;

/** The random steps of a run. */
export const networkAction: fc.Arbitrary<NetworkAction> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('op' as const),
      r: fc.nat(6),
      kind: fc.nat(3),
      key: fc.nat(4),
      variant: fc.nat(9),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('connect' as const), a: fc.nat(6), b: fc.nat(6) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('disconnect' as const), a: fc.nat(6), b: fc.nat(6) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('deliver' as const),
      link: fc.nat(20),
      dir: fc.boolean(),
      pick: fc.nat(7),
      mode: fc.constantFrom<'once' | 'dup' | 'drop'>('once', 'once', 'once', 'once', 'dup', 'drop'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('partition' as const), mask: fc.nat(127) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('heal' as const) }) },
  // A spell of good connectivity on one link: everything queued is delivered in order.
  { weight: 2, arbitrary: fc.record({ t: fc.constant('flush' as const), link: fc.nat(20) }) },
  // A home signs a second, different op for one of its seqs and hands it to another replica.
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('equivocate' as const),
      r: fc.nat(6),
      into: fc.nat(6),
      back: fc.nat(3),
      key: fc.nat(4),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('revoke' as const), remover: fc.nat(6), target: fc.nat(6) }),
  },
);

interface Side {
  session: SessionState;
  inbox: SyncMessage[];
}

interface Link {
  a: number;
  b: number;
  sides: [Side, Side];
  closed: boolean;
}

/** What a run did, for tests that check the random runs covered what they claim to. */
export interface RunStats {
  ops: number;
  revocations: number;
  equivocations: number;
  deliveries: number;
}

class Network {
  links: Link[] = [];
  partition: number | undefined;
  ts = 1;
  /** The newest document the root key has signed. */
  document: AccountDocument;
  /** Homes removed from the account (they may keep writing: their late ops must be refused). */
  readonly revoked = new Set<number>();
  /** Homes that signed two versions of one seq. */
  readonly equivocators = new Set<string>();
  /** The home that made each op, in order. */
  readonly made: number[] = [];
  /** Per replica, the highest lamport it accepted (what its next local op must exceed). */
  readonly lamports: number[];
  readonly stats: RunStats = { ops: 0, revocations: 0, equivocations: 0, deliveries: 0 };

  constructor(
    readonly account: FixtureAccount,
    readonly replicas: NetworkReplica[],
  ) {
    this.document = account.document;
    this.lamports = replicas.map(() => 0);
  }

  get serverName(): string {
    return this.account.serverName;
  }

  peer(r: number): string {
    return this.account.homes[r]!.peerId;
  }

  async apply(r: number, ops: readonly unknown[], from: number): Promise<Op[]> {
    const result = await this.replicas[r]!.store.applyOps(this.serverName, ops, this.peer(from));
    for (const op of result.accepted) this.lamports[r] = Math.max(this.lamports[r]!, op.lamport);
    return result.accepted;
  }

  async head(r: number): Promise<number> {
    return (await this.replicas[r]!.store.versionVector(this.serverName))[this.peer(r)] ?? 0;
  }

  // Home r signs another version of one of its ops (seq `back` below its head) and gives it to `into`.
  async equivocate(r: number, into: number, back: number, key: number): Promise<void> {
    if (r === into || this.revoked.has(r) || this.revoked.has(into)) return;
    const head = await this.head(r);
    if (head === 0) return;
    const seq = Math.max(1, head - back);
    const variant = new OpWriter(this.account, this.account.homes[r]!, this.document.seq).make(
      'device.put',
      `EQ${key}`,
      { ...deviceBody(this.account, `EQ${key}`, { display_name: `forged ${this.ts}` }) },
      { seq, lamport: this.lamports[r]! + 1 + key, ts: this.ts++ },
    );
    this.equivocators.add(this.peer(r));
    this.stats.equivocations += 1;
    await this.apply(into, [variant], r);
    await this.pushFrom(into);
  }

  // The root removes `target`, with the remover's vector entry as the cutoff, and tells the remover.
  async revoke(remover: number, target: number): Promise<void> {
    if (remover === target || this.revoked.has(remover) || this.revoked.has(target)) return;
    if (this.account.homes.length - this.revoked.size <= 2) return;
    const peerId = this.peer(target);
    const store = this.replicas[remover]!.store;
    const cutoff = (await store.versionVector(this.serverName))[peerId] ?? 0;
    const digest = (await store.logDigests?.(this.serverName))?.[peerId];
    // The revocation pins the log the remover holds, so replicas that hold other versions converge on it.
    const pin = cutoff > 0 && digest !== undefined ? { seq: cutoff, digest } : cutoff;
    this.document = withoutHome(this.account, this.document, peerId, pin);
    this.revoked.add(target);
    this.stats.revocations += 1;
    const inForce = await this.replicas[remover]!.store.offerDocument(this.serverName, this.document, peerId);
    expect(inForce.seq).toBe(this.document.seq);
    this.links = this.links.filter((l) => l.a !== target && l.b !== target);
    await this.pushFrom(remover);
  }

  private allowed(a: number, b: number): boolean {
    if (this.partition === undefined) return true;
    return ((this.partition >> a) & 1) === ((this.partition >> b) & 1);
  }

  async connect(a: number, b: number): Promise<Link | undefined> {
    if (a === b || !this.allowed(a, b)) return undefined;
    if (this.links.some((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a))) return undefined;
    // What the driver checks first: each side admits only homes of the document it holds.
    for (const [self, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const document = await this.replicas[self]!.store.document(this.serverName);
      if (document === undefined || admissionError(document, this.serverName, this.peer(other)) !== null) {
        return undefined;
      }
    }
    const link: Link = {
      a,
      b,
      sides: [
        { session: initSession(this.serverName), inbox: [] },
        { session: initSession(this.serverName), inbox: [] },
      ],
      closed: false,
    };
    this.links.push(link);
    await this.pumpSide(link, 0);
    await this.pumpSide(link, 1);
    return link;
  }

  disconnect(a: number, b: number): void {
    this.links = this.links.filter((l) => !((l.a === a && l.b === b) || (l.a === b && l.b === a)));
  }

  private replicaIndex(link: Link, side: 0 | 1): number {
    return side === 0 ? link.a : link.b;
  }

  // The messages a side generates go to the other side's inbox.
  private async pumpSide(link: Link, side: 0 | 1): Promise<void> {
    const r = this.replicaIndex(link, side);
    link.sides[side].session = await this.pump(link.sides[side].session, r, link.sides[side === 0 ? 1 : 0].inbox);
  }

  // Generates everything the session has to send now (hello, document, acks, up to a window of ops).
  private async pump(session: SessionState, r: number, out: SyncMessage[]): Promise<SessionState> {
    const store = this.replicas[r]!.store;
    let s = session;
    for (let i = 0; i < MAX_PUMP; i++) {
      const vv = await store.versionVector(this.serverName);
      const digests = (await store.logDigests?.(this.serverName)) ?? {};
      const request = opsRequest(s, vv, digests);
      const ops = request === null ? [] : await store.opsMissing(this.serverName, request.vv, request.limit);
      const document = (await store.document(this.serverName))!;
      const [next, message] = generate(s, { document, vv, digests, ops });
      s = next;
      if (message === null) return s;
      out.push(wire(message));
    }
    throw new Error(`pump produced more than ${MAX_PUMP} messages: the session is not bounded`);
  }

  async deliverOne(link: Link, side: 0 | 1, index: number, mode: 'once' | 'dup' | 'drop'): Promise<void> {
    const inbox = link.sides[side].inbox;
    if (inbox.length === 0) return;
    const i = index % inbox.length;
    const message = inbox[i]!;
    if (mode !== 'dup') inbox.splice(i, 1);
    if (mode === 'drop') return;
    this.stats.deliveries += 1;
    const r = this.replicaIndex(link, side);
    const other = this.replicaIndex(link, side === 0 ? 1 : 0);
    const back = link.sides[side === 0 ? 1 : 0].inbox;
    // Receive, carry out the effects on the store, then pump (as the libp2p driver does).
    const [received, effects] = receive(link.sides[side].session, message);
    let s = received;
    for (const effect of effects) {
      if (link.closed) break;
      if (effect.kind === 'apply_ops') await this.apply(r, effect.ops, other);
      else if (effect.kind === 'offer_document') {
        try {
          await this.replicas[r]!.store.offerDocument(
            this.serverName,
            effect.document as AccountDocument,
            this.peer(other),
          );
        } catch (error) {
          if (!(error instanceof DocumentRejectedError)) throw error;
          const [failed, close] = failSession(s, 'MALFORMED', error.message);
          s = failed;
          if (close.kind === 'close' && close.send !== undefined) back.push(wire(close.send));
          link.closed = true;
        }
      } else if (effect.kind === 'close') {
        if (effect.send !== undefined) back.push(wire(effect.send));
        link.closed = true;
      }
    }
    link.sides[side].session = link.closed ? s : await this.pump(s, r, back);
    // Others connected to this replica may now have something new to push.
    await this.pushFrom(r);
  }

  async pushFrom(r: number): Promise<void> {
    for (const link of [...this.links]) {
      if (link.a === r) await this.pumpSide(link, 0);
      if (link.b === r) await this.pumpSide(link, 1);
    }
  }

  async localOp(r: number, kind: number, key: number, variant: number): Promise<void> {
    const store = this.replicas[r]!.store;
    const document = (await store.document(this.serverName))!;
    const [op, opKey, body] = change(this.account, kind, key, variant);
    const made = new OpWriter(this.account, this.account.homes[r]!, document.seq).make(op, opKey, body, {
      seq: (await this.head(r)) + 1,
      lamport: this.lamports[r]! + 1,
      ts: this.ts++,
    });
    this.made.push(r);
    this.stats.ops += 1;
    const accepted = await this.apply(r, [made], r);
    // A removed home that already holds the document removing it refuses its own op; nobody else may.
    if (!this.revoked.has(r)) expect(accepted).toHaveLength(1);
    await this.pushFrom(r);
  }

  // Reliable, in-order delivery on one fresh session pair until both inboxes are empty.
  async exchange(a: number, b: number): Promise<void> {
    this.disconnect(a, b);
    const link = (await this.connect(a, b))!;
    await this.flush(link);
    expect(link.closed).toBe(false);
    this.disconnect(a, b);
  }

  // Delivers everything queued on a link, in order, until both inboxes are empty.
  async flush(link: Link): Promise<void> {
    for (let steps = 0; !link.closed; steps++) {
      if (steps > 100_000) throw new Error('exchange did not settle');
      const side = link.sides[0].inbox.length > 0 ? 0 : link.sides[1].inbox.length > 0 ? 1 : undefined;
      if (side === undefined) break;
      await this.deliverOne(link, side, 0, 'once');
    }
  }
}

function change(
  account: FixtureAccount,
  kind: number,
  key: number,
  variant: number,
): [OpKind, string, Record<string, unknown>] {
  switch (kind) {
    case 0:
      return ['device.put', `DEV${key}`, { ...deviceBody(account, `DEV${key}`, { display_name: `v${variant}` }) }];
    case 1:
      return ['device.delete', `DEV${key}`, {}];
    case 2: {
      const room = `!room${key}:example.org`;
      return ['member.set', room, { room_id: room, membership: MEMBERSHIPS[variant % 5]! }];
    }
    default: {
      const usage = USAGES[key % 3]!;
      return ['cross_signing.put', usage, { ...crossSigningBody(account, usage, variant) }];
    }
  }
}

/**
 * One random run: `replicas` (one per home of `account`, each already hosting it) go through `actions`, then
 * heal and exchange fully. Asserts that every live replica converged, nothing made by a live home was lost,
 * revoked homes' ops are held up to their cutoff only, no op is left pending and only equivocators are flagged.
 */
export async function runNetwork(
  account: FixtureAccount,
  replicas: NetworkReplica[],
  actions: readonly NetworkAction[],
): Promise<RunStats> {
  const homes = replicas.length;
  const net = new Network(account, replicas);
  for (const a of actions) {
    switch (a.t) {
      case 'op':
        await net.localOp(a.r % homes, a.kind, a.key, a.variant);
        break;
      case 'connect':
        await net.connect(a.a % homes, a.b % homes);
        break;
      case 'disconnect':
        net.disconnect(a.a % homes, a.b % homes);
        break;
      case 'deliver': {
        const link = net.links[a.link % Math.max(net.links.length, 1)];
        if (link !== undefined && !link.closed) await net.deliverOne(link, a.dir ? 0 : 1, a.pick, a.mode);
        break;
      }
      case 'partition':
        net.partition = a.mask;
        for (const l of [...net.links]) {
          if (((a.mask >> l.a) & 1) !== ((a.mask >> l.b) & 1)) net.disconnect(l.a, l.b);
        }
        break;
      case 'heal':
        net.partition = undefined;
        break;
      case 'revoke':
        await net.revoke(a.remover % homes, a.target % homes);
        break;
      case 'equivocate':
        await net.equivocate(a.r % homes, a.into % homes, a.back, a.key);
        break;
      case 'flush': {
        const link = net.links[a.link % Math.max(net.links.length, 1)];
        if (link !== undefined) await net.flush(link);
        break;
      }
    }
  }
  // Heal and a final full exchange: two passes over all pairs reach every replica from every other.
  net.partition = undefined;
  net.links = [];
  const live = replicas.map((_, i) => i).filter((i) => !net.revoked.has(i));
  for (let pass = 0; pass < 2; pass++) {
    for (const a of live) for (const b of live) if (a < b) await net.exchange(a, b);
  }
  const name = account.serverName;
  const [first, ...rest] = live.map((i) => replicas[i]!);
  const state = await first!.state(name);
  const vv = await first!.store.versionVector(name);
  for (const replica of rest) {
    expect(await replica.state(name)).toEqual(state);
    expect(await replica.store.versionVector(name)).toEqual(vv);
  }
  for (const replica of [first!, ...rest]) {
    expect(await replica.store.document(name)).toEqual(net.document);
    expect(await replica.pendingCount(name)).toBe(0);
    for (const origin of await replica.flaggedOrigins(name)) expect(net.equivocators.has(origin)).toBe(true);
  }
  // Nothing lost: every op made by a home still in the account is held (revoked homes' late ops are not).
  const made = net.made.filter((r) => !net.revoked.has(r)).length;
  const held = Object.entries(vv)
    .filter(([origin]) => !net.revoked.has(account.homes.findIndex((h) => h.peerId === origin)))
    .reduce((x, [, y]) => x + y, 0);
  expect(held).toBe(made);
  // A revoked home's ops are held up to its cutoff and never beyond.
  for (const [peerId, entry] of Object.entries(net.document.revoked)) {
    expect(vv[peerId] ?? 0).toBeLessThanOrEqual(revokedCutoff(entry));
  }
  return net.stats;
}
