// The op-kind registry: its contract with the wire and the database (pinned by value), its rules, and the
// exhaustiveness of what is derived from it. The type-level cases are checked by `npm run typecheck`
// (tsconfig.json includes test files): an `@ts-expect-error` whose line compiles fails the typecheck.
import { describe, expect, expectTypeOf, it } from 'vitest';
import { OpRejectedError } from './errors.js';
import type {
  AccountDataBody,
  BodyValidator,
  CrossSigningBody,
  DeviceBody,
  EmptyBody,
  MemberBody,
  ProfileBody,
  PasswordBody,
  PushRuleBody,
  RoomAccountDataBody,
} from './bodies.js';
import {
  OP_KINDS,
  LAZY_NAMESPACES,
  OP_KIND_LIST,
  STATE_FIELDS,
  emptyState,
  fieldOf,
  isOpKind,
  isTombstone,
  kindsOf,
  namespaceOf,
  putState,
  type AccountState,
  type AccountStateOf,
  type CheckedTable,
  type JsonAccountState,
  type OpBody,
  type OpKind,
  type OpNamespace,
  type StateField,
} from './kinds.js';
import { KIND_SAMPLES, makeAccount, type KindSample } from './testing/index.js';
import type { OpFields } from './op.js';
import type { RoomKeyBody, RoomKeyVersionBody } from './room-keys.js';

describe('op-kind registry', () => {
  it('keeps the kinds, namespaces, fields and tombstones that ops and state rows already carry', () => {
    // Literal on purpose: changing a namespace or a tombstone of an existing kind changes stored data.
    const contract = Object.fromEntries(
      OP_KIND_LIST.map((k) => [k, [OP_KINDS[k].namespace, OP_KINDS[k].field, OP_KINDS[k].tombstone]]),
    );
    expect(contract).toEqual({
      'device.put': ['device', 'devices', false],
      'device.delete': ['device', 'devices', true],
      'member.set': ['member', 'memberships', false],
      'cross_signing.put': ['cross_signing', 'crossSigning', false],
      'account_data.put': ['account_data', 'accountData', false],
      'room_account_data.put': ['room_account_data', 'roomAccountData', false],
      'profile.set': ['profile', 'profile', false],
      'push_rule.put': ['push_rule', 'pushRules', false],
      'push_rule.delete': ['push_rule', 'pushRules', true],
      'password.set': ['password', 'password', false],
      'room_keys.version.put': ['room_keys_version', 'roomKeyVersions', false],
      'room_keys.version.delete': ['room_keys_version', 'roomKeyVersions', true],
      'room_keys.key.put': ['room_keys_key', 'roomKeys', false],
      'room_keys.key.delete': ['room_keys_key', 'roomKeys', true],
    });
    expect(STATE_FIELDS).toEqual([
      'devices',
      'memberships',
      'crossSigning',
      'accountData',
      'roomAccountData',
      'profile',
      'pushRules',
      'password',
      'roomKeyVersions',
      'roomKeys',
    ]);
    // Key backup is read a prefix at a time, never in the whole state.
    expect(LAZY_NAMESPACES).toEqual(['room_keys_version', 'room_keys_key']);
  });

  it('gives every namespace a storable name and one state field, and every field one namespace', () => {
    const namespaces = [...new Set(OP_KIND_LIST.map(namespaceOf))];
    for (const namespace of namespaces) {
      // account_state.namespace is varchar(32); changed keys are split at the first colon.
      expect(namespace.length).toBeLessThanOrEqual(32);
      expect(namespace).not.toContain(':');
      const fields = new Set(kindsOf(namespace).map((k) => OP_KINDS[k].field));
      expect([...fields]).toEqual([fieldOf(namespace)]);
    }
    expect(new Set(namespaces.map(fieldOf)).size).toBe(namespaces.length);
    expect(STATE_FIELDS).toHaveLength(namespaces.length);
    // A tombstone hides a key of a namespace some other kind puts into.
    for (const kind of OP_KIND_LIST.filter(isTombstone)) {
      expect(kindsOf(namespaceOf(kind)).some((k) => !isTombstone(k))).toBe(true);
    }
  });

  it('answers lookups from the table only', () => {
    expect(OP_KIND_LIST.every(isOpKind)).toBe(true);
    for (const name of ['toString', '__proto__', 'constructor', 'presence.set', 'device', '']) {
      expect(isOpKind(name)).toBe(false);
    }
    expect(isOpKind(1)).toBe(false);
    expect(kindsOf('device')).toEqual(['device.put', 'device.delete']);
    expect(fieldOf('member')).toBe('memberships');
    expect(fieldOf('account_data')).toBe('accountData');
    expect(fieldOf('presence')).toBeUndefined();
    expect(fieldOf('toString')).toBeUndefined();
  });

  it('builds states with every field, and keeps a "__proto__" key a key', () => {
    const state = emptyState<number>();
    expect(state).toEqual({
      devices: {},
      memberships: {},
      crossSigning: {},
      accountData: {},
      roomAccountData: {},
      profile: {},
      pushRules: {},
      password: {},
      roomKeyVersions: {},
      roomKeys: {},
    });
    putState(state, 'devices', '__proto__', 1);
    expect(Object.keys(state.devices)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(state.devices)).toBe(Object.prototype);
  });

  it('validates each kind with its own validator: a sample passes, the sample of another namespace does not', () => {
    const account = makeAccount({ seed: 'kinds', homes: 1 });
    for (const kind of OP_KIND_LIST) {
      const sample = KIND_SAMPLES[kind](account);
      expect(OP_KINDS[kind].validate(sample.body, sample.key, account.userId)).toBe(sample.body);
      // Tombstones of different namespaces share the empty body (some check their key only).
      const others = OP_KIND_LIST.filter(
        (k) =>
          namespaceOf(k) !== namespaceOf(kind) &&
          OP_KINDS[k].validate !== OP_KINDS[kind].validate &&
          !(isTombstone(k) && isTombstone(kind)),
      );
      for (const other of others) {
        const foreign = KIND_SAMPLES[other](account);
        expect(() => OP_KINDS[kind].validate(foreign.body, sample.key, account.userId)).toThrow(OpRejectedError);
      }
    }
  });
});

describe('op-kind registry: derived types', () => {
  it('derives the kind, namespace and state types from the table', () => {
    expectTypeOf<OpKind>().toEqualTypeOf<
      | 'device.put'
      | 'device.delete'
      | 'member.set'
      | 'cross_signing.put'
      | 'account_data.put'
      | 'room_account_data.put'
      | 'profile.set'
      | 'push_rule.put'
      | 'push_rule.delete'
      | 'password.set'
      | 'room_keys.version.put'
      | 'room_keys.version.delete'
      | 'room_keys.key.put'
      | 'room_keys.key.delete'
    >();
    expectTypeOf<OpNamespace>().toEqualTypeOf<
      | 'device'
      | 'member'
      | 'cross_signing'
      | 'account_data'
      | 'room_account_data'
      | 'profile'
      | 'push_rule'
      | 'password'
      | 'room_keys_version'
      | 'room_keys_key'
    >();
    expectTypeOf<StateField>().toEqualTypeOf<
      | 'devices'
      | 'memberships'
      | 'crossSigning'
      | 'accountData'
      | 'roomAccountData'
      | 'profile'
      | 'pushRules'
      | 'password'
      | 'roomKeyVersions'
      | 'roomKeys'
    >();
    expectTypeOf<OpBody<'device.put'>>().toEqualTypeOf<DeviceBody>();
    expectTypeOf<OpBody<'device.delete'>>().toEqualTypeOf<EmptyBody>();
    // The state as the interface written by hand before the registry declared it, and the fields added since.
    expectTypeOf<AccountState>().toEqualTypeOf<{
      devices: Record<string, DeviceBody>;
      memberships: Record<string, MemberBody>;
      crossSigning: Record<string, CrossSigningBody>;
      accountData: Record<string, AccountDataBody>;
      roomAccountData: Record<string, RoomAccountDataBody>;
      profile: Record<string, ProfileBody>;
      pushRules: Record<string, PushRuleBody>;
      password: Record<string, PasswordBody>;
      roomKeyVersions: Record<string, RoomKeyVersionBody>;
      roomKeys: Record<string, RoomKeyBody>;
    }>();
    expectTypeOf<keyof JsonAccountState>().toEqualTypeOf<StateField>();
    expect(OP_KIND_LIST).toHaveLength(14);
  });

  it('does not compile a kind that the table lacks', () => {
    // @ts-expect-error 'presence.set' is not an entry of the registry, so it is no OpKind.
    const kind: OpKind = 'presence.set';
    // @ts-expect-error nor can an op of it be made.
    const fields: Pick<OpFields, 'op'> = { op: 'typing.set' };
    expect([kind, fields.op].some(isOpKind)).toBe(false);
  });

  it('does not compile a per-kind map that misses a kind of the table', () => {
    const { 'cross_signing.put': _left, ...rest } = KIND_SAMPLES;
    // @ts-expect-error KIND_SAMPLES is typed per kind: one without `cross_signing.put` is refused.
    const samples: typeof KIND_SAMPLES = rest;
    const perKind: Record<OpKind, KindSample | undefined> = {
      'device.put': undefined,
      'device.delete': undefined,
      'member.set': undefined,
      'cross_signing.put': undefined,
      'account_data.put': undefined,
      'room_account_data.put': undefined,
      'profile.set': undefined,
      'push_rule.put': undefined,
      'push_rule.delete': undefined,
      'password.set': undefined,
      'room_keys.version.put': undefined,
      'room_keys.version.delete': undefined,
      'room_keys.key.put': undefined,
      'room_keys.key.delete': undefined,
      // @ts-expect-error nor may such a map name a kind the table lacks.
      'presence.set': undefined,
    };
    expect(Object.keys(samples)).not.toContain('cross_signing.put');
    expect(Object.keys(perKind)).toContain('presence.set');
  });

  it('makes every state built by hand name the field of a new kind', () => {
    // The table with one more kind, as the README's "Adding an op kind" would add it.
    type WithPresence = typeof OP_KINDS & {
      'presence.set': {
        namespace: 'presence';
        field: 'presence';
        tombstone: false;
        validate: BodyValidator<{ presence: string }>;
      };
    };
    expectTypeOf<keyof AccountStateOf<WithPresence>>().toEqualTypeOf<StateField | 'presence'>();
    expectTypeOf<AccountStateOf<WithPresence>['presence']>().toEqualTypeOf<Record<string, { presence: string }>>();
    const fields = {
      devices: {},
      memberships: {},
      crossSigning: {},
      accountData: {},
      roomAccountData: {},
      profile: {},
      pushRules: {},
      password: {},
      roomKeyVersions: {},
      roomKeys: {},
    };
    // @ts-expect-error a state without the new field no longer compiles.
    const stale: AccountStateOf<WithPresence> = fields;
    const current: AccountStateOf<typeof OP_KINDS> = fields;
    expect(Object.keys(stale)).toEqual(Object.keys(current));
  });

  it('does not compile a registry that breaks its rules', () => {
    const ok: CheckedTable<typeof OP_KINDS> = OP_KINDS;
    const split = { ...OP_KINDS, 'device.delete': { ...OP_KINDS['device.delete'], field: 'gone' } } as const;
    // @ts-expect-error device.delete and device.put share a namespace but not a field.
    const splitChecked: CheckedTable<typeof split> = split;
    const merged = { ...OP_KINDS, 'member.set': { ...OP_KINDS['member.set'], field: 'devices' } } as const;
    // @ts-expect-error two namespaces (device, member) would write their keys into one field.
    const mergedChecked: CheckedTable<typeof merged> = merged;
    const colon = { ...OP_KINDS, 'member.set': { ...OP_KINDS['member.set'], namespace: 'room:member' } } as const;
    // @ts-expect-error a namespace with a colon could not be split back out of a changed key.
    const colonChecked: CheckedTable<typeof colon> = colon;
    expect([ok, splitChecked, mergedChecked, colonChecked].every((t) => Object.keys(t).length === 14)).toBe(true);
  });
});
