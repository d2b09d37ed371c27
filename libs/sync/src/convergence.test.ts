// Convergence in the manner of Yjs's random tests, with fast-check: 3 to 7 homes of one account make
// random ops while a simulated network of sync sessions delivers, drops, duplicates and reorders
// messages, partitions and heals, disconnects and reconnects. After healing and a final full exchange,
// every replica must hold the same state and version vector. fast-check prints `seed` and `path` of a
// failing run; replay it with fc.assert(..., { seed, path }).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AccountDocument, SecretKey } from '@polyhome/identity';
import {
  applyOps,
  createReplica,
  documentOf,
  offerDocument,
  makeLocalOp,
  nextLamport,
  pendingCount,
  stateOf,
  versionVector,
  flaggedOrigins,
  type LocalChange,
  type Replica,
} from './replica.js';
import { admissionError, initSession, type SessionState } from './session.js';
import type { CrossSigningUsage, Membership, SyncMessage } from './types.js';
import {
  crossSigningBody,
  deliver,
  deviceBody,
  makeAccount,
  OpWriter,
  pump,
  withoutHome,
  type FixtureAccount,
} from './testing/index.js';

const RUNS = Number(process.env.SYNC_CONVERGENCE_RUNS ?? 200);
const MEMBERSHIPS: Membership[] = ['join', 'leave', 'invite', 'ban', 'knock'];
const USAGES: CrossSigningUsage[] = ['master', 'self_signing', 'user_signing'];

type Action =
  | { t: 'op'; r: number; kind: number; key: number; variant: number }
  | { t: 'connect'; a: number; b: number }
  | { t: 'disconnect'; a: number; b: number }
  | { t: 'deliver'; link: number; dir: boolean; pick: number; mode: 'once' | 'dup' | 'drop' }
  | { t: 'partition'; mask: number }
  | { t: 'heal' }
  | { t: 'revoke'; remover: number; target: number }
  | { t: 'flush'; link: number }
  | { t: 'equivocate'; r: number; into: number; back: number; key: number };

const action: fc.Arbitrary<Action> = fc.oneof(
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

class Network {
  readonly replicas: Replica[];
  readonly keys: SecretKey[];
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

  constructor(readonly account: FixtureAccount) {
    this.replicas = account.homes.map(() => createReplica(account.document));
    this.keys = account.homes.map((h) => h.secretKey);
    this.document = account.document;
  }

  // Home r signs another version of one of its ops (seq `back` below its head) and gives it to `into`.
  equivocate(r: number, into: number, back: number, key: number): void {
    if (r === into || this.revoked.has(r) || this.revoked.has(into)) return;
    const home = this.account.homes[r]!;
    const head = versionVector(this.replicas[r]!)[home.peerId] ?? 0;
    if (head === 0) return;
    const seq = Math.max(1, head - back);
    const variant = new OpWriter(this.account, home, this.document.seq).make(
      'device.put',
      `EQ${key}`,
      { ...deviceBody(this.account, `EQ${key}`, { display_name: `forged ${this.ts}` }) },
      { seq, lamport: nextLamport(this.replicas[r]!) + key, ts: this.ts++ },
    );
    this.equivocators.add(home.peerId);
    const [replica] = applyOps(this.replicas[into]!, [variant]);
    this.replicas[into] = replica;
    this.pushFrom(into);
  }

  // The root removes `target`, with the remover's vector entry as the cutoff, and tells the remover.
  revoke(remover: number, target: number): void {
    if (remover === target || this.revoked.has(remover) || this.revoked.has(target)) return;
    if (this.account.homes.length - this.revoked.size <= 2) return;
    const peerId = this.account.homes[target]!.peerId;
    const cutoff = versionVector(this.replicas[remover]!)[peerId] ?? 0;
    this.document = withoutHome(this.account, this.document, peerId, cutoff);
    this.revoked.add(target);
    const [replica, offer] = offerDocument(this.replicas[remover]!, this.document);
    expect(offer.choice.kind).toBe('accept');
    this.replicas[remover] = replica;
    this.links = this.links.filter((l) => l.a !== target && l.b !== target);
    this.pushFrom(remover);
  }

  private allowed(a: number, b: number): boolean {
    if (this.partition === undefined) return true;
    return ((this.partition >> a) & 1) === ((this.partition >> b) & 1);
  }

  connect(a: number, b: number): Link | undefined {
    if (a === b || !this.allowed(a, b)) return undefined;
    if (this.links.some((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a))) return undefined;
    // What the driver checks first: each side admits only homes of the document it holds.
    const peerA = this.account.homes[a]!.peerId;
    const peerB = this.account.homes[b]!.peerId;
    if (admissionError(documentOf(this.replicas[a]!), this.account.serverName, peerB) !== null) return undefined;
    if (admissionError(documentOf(this.replicas[b]!), this.account.serverName, peerA) !== null) return undefined;
    const link: Link = {
      a,
      b,
      sides: [
        { session: initSession(this.account.serverName), inbox: [] },
        { session: initSession(this.account.serverName), inbox: [] },
      ],
      closed: false,
    };
    this.links.push(link);
    this.pumpSide(link, 0);
    this.pumpSide(link, 1);
    return link;
  }

  disconnect(a: number, b: number): void {
    this.links = this.links.filter((l) => !((l.a === a && l.b === b) || (l.a === b && l.b === a)));
  }

  private replicaIndex(link: Link, side: 0 | 1): number {
    return side === 0 ? link.a : link.b;
  }

  // The messages a side generates go to the other side's inbox.
  private pumpSide(link: Link, side: 0 | 1): void {
    const r = this.replicaIndex(link, side);
    const [session, out] = pump(link.sides[side].session, this.replicas[r]!);
    link.sides[side].session = session;
    link.sides[side === 0 ? 1 : 0].inbox.push(...out);
  }

  deliverOne(link: Link, side: 0 | 1, index: number, mode: 'once' | 'dup' | 'drop'): void {
    const inbox = link.sides[side].inbox;
    if (inbox.length === 0) return;
    const i = index % inbox.length;
    const message = inbox[i]!;
    if (mode !== 'dup') inbox.splice(i, 1);
    if (mode === 'drop') return;
    const r = this.replicaIndex(link, side);
    const result = deliver(link.sides[side].session, this.replicas[r]!, message);
    link.sides[side].session = result.session;
    this.replicas[r] = result.replica;
    link.sides[side === 0 ? 1 : 0].inbox.push(...result.out);
    if (result.closed) link.closed = true;
    // Others connected to this replica may now have something new to push.
    this.pushFrom(r);
  }

  pushFrom(r: number): void {
    for (const link of this.links) {
      if (link.a === r) this.pumpSide(link, 0);
      if (link.b === r) this.pumpSide(link, 1);
    }
  }

  localOp(r: number, change: LocalChange): void {
    const op = makeLocalOp(this.replicas[r]!, this.keys[r]!, change, this.ts++);
    this.made.push(r);
    const [replica, result] = applyOps(this.replicas[r]!, [op]);
    // A removed home that already holds the document removing it refuses its own op; nobody else may.
    if (!this.revoked.has(r)) expect(result.accepted).toHaveLength(1);
    this.replicas[r] = replica;
    this.pushFrom(r);
  }

  // Reliable, in-order delivery on one fresh session pair until both inboxes are empty.
  exchange(a: number, b: number): void {
    this.disconnect(a, b);
    const link = this.connect(a, b)!;
    this.flush(link);
    expect(link.closed).toBe(false);
    this.disconnect(a, b);
  }

  // Delivers everything queued on a link, in order, until both inboxes are empty.
  flush(link: Link): void {
    for (let steps = 0; !link.closed; steps++) {
      if (steps > 100_000) throw new Error('exchange did not settle');
      const side = link.sides[0].inbox.length > 0 ? 0 : link.sides[1].inbox.length > 0 ? 1 : undefined;
      if (side === undefined) break;
      this.deliverOne(link, side, 0, 'once');
    }
  }
}

function change(account: FixtureAccount, kind: number, key: number, variant: number): LocalChange {
  switch (kind) {
    case 0:
      return {
        op: 'device.put',
        key: `DEV${key}`,
        body: { ...deviceBody(account, `DEV${key}`, { display_name: `v${variant}` }) },
      };
    case 1:
      return { op: 'device.delete', key: `DEV${key}`, body: {} };
    case 2: {
      const room = `!room${key}:example.org`;
      return { op: 'member.set', key: room, body: { room_id: room, membership: MEMBERSHIPS[variant % 5]! } };
    }
    default: {
      const usage = USAGES[key % 3]!;
      return { op: 'cross_signing.put', key: usage, body: { ...crossSigningBody(account, usage, variant) } };
    }
  }
}

function run(homes: number, actions: Action[]): void {
  const account = makeAccount({ seed: `convergence-${homes}`, homes });
  const net = new Network(account);
  for (const a of actions) {
    switch (a.t) {
      case 'op':
        net.localOp(a.r % homes, change(account, a.kind, a.key, a.variant));
        break;
      case 'connect':
        net.connect(a.a % homes, a.b % homes);
        break;
      case 'disconnect':
        net.disconnect(a.a % homes, a.b % homes);
        break;
      case 'deliver': {
        const link = net.links[a.link % Math.max(net.links.length, 1)];
        if (link !== undefined && !link.closed) net.deliverOne(link, a.dir ? 0 : 1, a.pick, a.mode);
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
        net.revoke(a.remover % homes, a.target % homes);
        break;
      case 'equivocate':
        net.equivocate(a.r % homes, a.into % homes, a.back, a.key);
        break;
      case 'flush': {
        const link = net.links[a.link % Math.max(net.links.length, 1)];
        if (link !== undefined) net.flush(link);
        break;
      }
    }
  }
  // Heal and a final full exchange: two passes over all pairs reach every replica from every other.
  net.partition = undefined;
  net.links = [];
  const live = net.replicas.map((_, i) => i).filter((i) => !net.revoked.has(i));
  for (let pass = 0; pass < 2; pass++) {
    for (const a of live) for (const b of live) if (a < b) net.exchange(a, b);
  }
  const [first, ...rest] = live.map((i) => net.replicas[i]!);
  const state = stateOf(first!);
  const vv = versionVector(first!);
  for (const replica of rest) {
    expect(stateOf(replica)).toEqual(state);
    expect(versionVector(replica)).toEqual(vv);
  }
  for (const replica of [first!, ...rest]) {
    expect(documentOf(replica)).toEqual(net.document);
    expect(pendingCount(replica)).toBe(0);
    for (const origin of flaggedOrigins(replica)) expect(net.equivocators.has(origin)).toBe(true);
  }
  // Nothing lost: every op made by a home still in the account is held (revoked homes' late ops are not).
  const made = net.made.filter((r) => !net.revoked.has(r)).length;
  const held = Object.entries(vv)
    .filter(([origin]) => !net.revoked.has(net.account.homes.findIndex((h) => h.peerId === origin)))
    .reduce((x, [, y]) => x + y, 0);
  expect(held).toBe(made);
  // A revoked home's ops are held up to its cutoff and never beyond.
  for (const [peerId, cutoff] of Object.entries(net.document.revoked))
    expect(vv[peerId] ?? 0).toBeLessThanOrEqual(cutoff);
}

describe('convergence of replicas over a lossy, reordering, partitioning network', () => {
  // The timeout grows with SYNC_CONVERGENCE_RUNS, for long soak runs.
  it(`converges on ${RUNS} seeded random runs`, { timeout: 30_000 + RUNS * 100 }, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 7 }),
        fc.array(action, { minLength: 10, maxLength: 100, size: 'max' }),
        (homes, actions) => {
          run(homes, actions);
        },
      ),
      {
        numRuns: RUNS,
        seed: process.env.SYNC_SEED === undefined ? undefined : Number(process.env.SYNC_SEED),
        verbose: 1,
      },
    );
  });
});
