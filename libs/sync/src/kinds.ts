// The registry of op kinds: one table saying, for each kind, where its ops land in the state and how their
// bodies are checked. Everything else that depends on the kind is derived from it: the OpKind and namespace
// types, the body validators parseOp runs, the materialised state (memory replica), the SQL state read and
// state row (@polyhome/storage) and the Matrix port's state type (@polyhome/matrix). Adding a kind is one
// entry here plus its validator (bodies.ts); see the README, "Adding an op kind".
import {
  validateAccountDataBody,
  validateCrossSigningBody,
  validateDeviceBody,
  validateEmptyBody,
  validateMemberBody,
  validatePasswordBody,
  validateProfileBody,
  validatePushRuleBody,
  validateRoomAccountDataBody,
  type BodyValidator,
} from './bodies.js';
import {
  compareRoomKeys,
  roomKeyGroup,
  type RoomKeyBody,
  validateRoomKeyBody,
  validateRoomKeyDeleteBody,
  validateRoomKeyVersionBody,
  validateRoomKeyVersionDeleteBody,
} from './room-keys.js';

/** What the registry says about one op kind. */
export interface OpKindSpec {
  /**
   * The state namespace the kind writes to. Ops of all kinds of one namespace compete for one slot per key
   * (`<namespace>:<key>`, as ApplyResult.changed reports it); stored as `account_state.namespace` (at most 32
   * characters, no colon).
   */
  readonly namespace: string;
  /** The field of the materialised state (AccountState, the Matrix port's state) the namespace is read into. */
  readonly field: string;
  /** True when a winning op of this kind hides its key: a tombstone, stored as a `deleted` row without a value. */
  readonly tombstone: boolean;
  /** Checks an untrusted body (throws OpRejectedError `malformed`); the type it returns is the kind's body type. */
  readonly validate: BodyValidator<object>;
  /**
   * True for a namespace that may hold many keys per account (key backup): the whole-state read leaves it out
   * (its field is always empty there), and it is read a namespace and key prefix at a time instead.
   */
  readonly lazy?: boolean;
  /**
   * For a put kind whose ops compete by value: > 0 when body `a` should win over body `b`, 0 when neither is
   * better (then the later op wins). The key's winner is then chosen as `winnerOf` (winner.ts) says, the same on
   * every home whatever order the ops arrive in.
   */
  readonly prefer?: (a: object, b: object) => number;
  /**
   * For a lazy namespace whose keys fall into groups read as a whole (the keys of one backup version): the group of
   * a key, a prefix every key of the group starts with (and no other key). Stores keep a summary per group
   * (`summaryOf`: count of live keys and the XOR of their hashes) so it is read without its rows.
   */
  readonly summaryGroup?: (key: string) => string;
}

/**
 * The op kinds. The key is the op's `op` field on the wire and in the `op.kind` column; `namespace` and
 * `tombstone` decide the `account_state` row. Changing either for an existing kind changes stored data.
 */
export const OP_KINDS = {
  'device.put': { namespace: 'device', field: 'devices', tombstone: false, validate: validateDeviceBody },
  // Hides the device; a late, older `device.put` cannot resurrect it (the tombstone still holds the slot).
  'device.delete': { namespace: 'device', field: 'devices', tombstone: true, validate: validateEmptyBody },
  'member.set': { namespace: 'member', field: 'memberships', tombstone: false, validate: validateMemberBody },
  'cross_signing.put': {
    namespace: 'cross_signing',
    field: 'crossSigning',
    tombstone: false,
    validate: validateCrossSigningBody,
  },
  'account_data.put': {
    namespace: 'account_data',
    field: 'accountData',
    tombstone: false,
    validate: validateAccountDataBody,
  },
  'room_account_data.put': {
    namespace: 'room_account_data',
    field: 'roomAccountData',
    tombstone: false,
    validate: validateRoomAccountDataBody,
  },
  'profile.set': { namespace: 'profile', field: 'profile', tombstone: false, validate: validateProfileBody },
  'push_rule.put': { namespace: 'push_rule', field: 'pushRules', tombstone: false, validate: validatePushRuleBody },
  // Deletes a user-defined rule; a late, older put cannot bring it back.
  'push_rule.delete': { namespace: 'push_rule', field: 'pushRules', tombstone: true, validate: validateEmptyBody },
  'password.set': { namespace: 'password', field: 'password', tombstone: false, validate: validatePasswordBody },
  // Key backup (`/room_keys`): versions and their session keys, read lazily (see docs/decisions.md).
  'room_keys.version.put': {
    namespace: 'room_keys_version',
    field: 'roomKeyVersions',
    tombstone: false,
    lazy: true,
    validate: validateRoomKeyVersionBody,
  },
  'room_keys.version.delete': {
    namespace: 'room_keys_version',
    field: 'roomKeyVersions',
    tombstone: true,
    lazy: true,
    validate: validateRoomKeyVersionDeleteBody,
  },
  'room_keys.key.put': {
    namespace: 'room_keys_key',
    field: 'roomKeys',
    tombstone: false,
    lazy: true,
    validate: validateRoomKeyBody,
    summaryGroup: roomKeyGroup,
    // The spec's replacement rule, applied by the merge too: homes converge on the better key.
    prefer: (a: object, b: object) => compareRoomKeys(a as RoomKeyBody, b as RoomKeyBody),
  },
  'room_keys.key.delete': {
    namespace: 'room_keys_key',
    field: 'roomKeys',
    tombstone: true,
    lazy: true,
    validate: validateRoomKeyDeleteBody,
    summaryGroup: roomKeyGroup,
  },
} as const satisfies Record<string, OpKindSpec>;

type Table = typeof OP_KINDS;

/** A registry of op kinds: kind -> spec (OP_KINDS is the one in force; tests build others to check the derivations). */
export type KindTable = Record<string, OpKindSpec>;

/** The kinds of op: the keys of the registry. */
export type OpKind = keyof Table;

/** The namespace of the state an op kind writes to; `device.put` and `device.delete` share one. */
export type OpNamespace = Table[OpKind]['namespace'];

/** The fields of the materialised state, one per namespace. */
export type StateField = Table[OpKind]['field'];

/** The body of an op of kind `K`: what its validator returns. */
export type OpBody<K extends OpKind> = ReturnType<Table[K]['validate']>;

/** The kinds of a table whose winning op puts its body into the state (all but tombstones). */
type PutKinds<T> = { [K in keyof T]: T[K] extends { tombstone: true } ? never : K }[keyof T];

/** The bodies a state field holds: those of the put kinds that write to it. */
type FieldBodies<T, F> = {
  [K in PutKinds<T>]: T[K] extends { field: F; validate: BodyValidator<infer B> } ? B : never;
}[PutKinds<T>];

/** The materialised state a registry gives: one record per state field, key -> the bodies its kinds put there. */
export type AccountStateOf<T extends KindTable> = {
  [F in T[keyof T]['field']]: Record<string, FieldBodies<T, F>>;
};

/**
 * The replicated state of an account as plain data, typed by kind: for each field (`devices`, `memberships`,
 * `crossSigning`), key -> the body of the winning op, keys sorted; a key whose winner is a tombstone is absent.
 */
export type AccountState = AccountStateOf<Table>;

/** A state with one record per field, key to `V`. */
export type StateRecords<V> = { [F in StateField]: Record<string, V> };

/** The same state with bodies as untyped JSON objects: what the SQL store reads and the Matrix port serves. */
export type JsonAccountState = StateRecords<Record<string, unknown>>;

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type FieldsOfNamespace<T, N> = { [K in keyof T]: T[K] extends { namespace: N; field: infer F } ? F : never }[keyof T];
type NamespacesOfField<T, F> = { [K in keyof T]: T[K] extends { field: F; namespace: infer N } ? N : never }[keyof T];

/**
 * A registry that keeps the state unambiguous: every entry as it is, or an error string where an entry breaks
 * a rule. Assigning a table to its CheckedTable fails to compile unless all kinds of a namespace share one
 * field, every field holds one namespace, and no namespace contains a colon.
 */
export type CheckedTable<T extends KindTable> = {
  [K in keyof T]: Same<FieldsOfNamespace<T, T[K]['namespace']>, T[K]['field']> extends false
    ? 'error: all kinds of a namespace must share one state field'
    : Same<NamespacesOfField<T, T[K]['field']>, T[K]['namespace']> extends false
      ? 'error: a state field holds the keys of one namespace'
      : T[K]['namespace'] extends `${string}:${string}`
        ? 'error: a namespace must not contain ":"'
        : T[K];
};

// Compile-time proof that OP_KINDS follows the rules of CheckedTable.
const _checked: CheckedTable<Table> = OP_KINDS;

/** Every op kind, in registry order. */
export const OP_KIND_LIST: readonly OpKind[] = Object.keys(OP_KINDS) as OpKind[];

interface NamespaceSpec {
  readonly field: StateField;
  readonly kinds: readonly OpKind[];
}

const NAMESPACES: ReadonlyMap<string, NamespaceSpec> = (() => {
  const out = new Map<string, { field: StateField; kinds: OpKind[] }>();
  for (const kind of OP_KIND_LIST) {
    const { namespace, field } = OP_KINDS[kind];
    const entry = out.get(namespace) ?? { field, kinds: [] };
    entry.kinds.push(kind);
    out.set(namespace, entry);
  }
  return out;
})();

/** Every state field, in registry order. */
export const STATE_FIELDS: readonly StateField[] = [...NAMESPACES.values()].map((n) => n.field);

/** True when `value` names a registered kind (never true for inherited names such as `toString`). */
export function isOpKind(value: unknown): value is OpKind {
  return typeof value === 'string' && Object.hasOwn(OP_KINDS, value);
}

/** The state namespace an op kind writes to. */
export function namespaceOf(kind: OpKind): OpNamespace {
  return OP_KINDS[kind].namespace;
}

/** The kinds that write to a namespace (the ops that compete for its keys). */
export function kindsOf(namespace: OpNamespace): readonly OpKind[] {
  return NAMESPACES.get(namespace)!.kinds;
}

/**
 * The state field a namespace is read into; undefined for a namespace this version does not know (a row a
 * newer version wrote to a shared database: this one cannot serve it).
 */
export function fieldOf(namespace: string): StateField | undefined {
  return NAMESPACES.get(namespace)?.field;
}

/** Namespaces left out of the whole-state read (`lazy` in the registry), read by key prefix instead. */
export const LAZY_NAMESPACES: readonly string[] = [
  ...new Set(OP_KIND_LIST.filter((k) => (OP_KINDS[k] as OpKindSpec).lazy === true).map((k) => OP_KINDS[k].namespace)),
];

/** True when a namespace is lazy: not in the whole-state read, nor in the Matrix change stream. */
export function isLazyNamespace(namespace: string): boolean {
  return LAZY_NAMESPACES.includes(namespace);
}

/**
 * The summary group of a key of a namespace that keeps summaries (`summaryGroup` in the registry), else undefined.
 */
export function summaryGroupOf(namespace: string, key: string): string | undefined {
  const kind = NAMESPACES.get(namespace)?.kinds[0];
  const group = kind === undefined ? undefined : (OP_KINDS[kind] as OpKindSpec).summaryGroup;
  return group?.(key);
}

/** True when a winning op of this kind hides its key. */
export function isTombstone(kind: OpKind): boolean {
  return OP_KINDS[kind].tombstone;
}

/** A state with every field empty. */
export function emptyState<V>(): StateRecords<V> {
  return Object.fromEntries(STATE_FIELDS.map((field) => [field, {}])) as StateRecords<V>;
}

/** Sets `key` of a state field. Keys are chosen by clients (device ids): "__proto__" stays a key. */
export function putState<V>(state: StateRecords<V>, field: StateField, key: string, value: V): void {
  Object.defineProperty(state[field], key, { value, enumerable: true, writable: true, configurable: true });
}
