// The port's state and change types come from the op-kind registry of @polyhome/sync: a kind or a state field
// the registry lacks does not compile here (checked by `npm run typecheck`, which includes test files).
import { OP_KIND_LIST, STATE_FIELDS, emptyState, isOpKind, type OpKind, type StateField } from '@polyhome/sync';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { MatrixAccountState, MatrixLocalChange } from './port.js';

describe('Matrix home port types', () => {
  it('takes a local change of every registered kind, and of no other', () => {
    expectTypeOf<MatrixLocalChange['op']>().toEqualTypeOf<OpKind>();
    const changes: MatrixLocalChange[] = OP_KIND_LIST.map((op) => ({ op, key: 'K', body: {} }));
    // @ts-expect-error 'presence.set' is not in the registry (yet): the port cannot be asked for it.
    const unknown: MatrixLocalChange = { op: 'presence.set', key: 'm.direct', body: {} };
    expect(changes.every((c) => isOpKind(c.op))).toBe(true);
    expect(isOpKind(unknown.op)).toBe(false);
  });

  it('serves one record per state field of the registry', () => {
    expectTypeOf<keyof MatrixAccountState>().toEqualTypeOf<StateField>();
    // @ts-expect-error a state missing a registered field (here crossSigning) is not a MatrixAccountState.
    const partial: MatrixAccountState = { devices: {}, memberships: {} };
    const state: MatrixAccountState = emptyState();
    expect(Object.keys(state)).toEqual(STATE_FIELDS);
    expect(Object.keys(partial)).not.toEqual(STATE_FIELDS);
  });
});
