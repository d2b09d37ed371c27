import { describe, expect, it } from 'vitest';
import { AuthChainTooLargeError, authChain, authDifference } from './auth-chain.js';
import { checkAuth } from './auth.js';
import { ALICE, BOB, TestDag, membership, powerLevels, startRoom, topic } from './testing/dag.js';
import type { EventLookup, Pdu, StateMap } from './types.js';

async function room(): Promise<TestDag> {
  const dag = new TestDag('11', checkAuth);
  await startRoom(dag);
  return dag;
}

const named = (dag: TestDag, ids: Iterable<string>) =>
  [...dag.names(new Map([...ids].map((id) => [id, id]))).values()].sort();

describe('authChain', () => {
  it('collects the auth events transitively, without the starting event, one store read per level', async () => {
    const dag = await room();
    dag.reads = { calls: 0, ids: 0 };
    // $IMB names $CREATE, $IPOWER and $IJR; those name $IMA; $IMA names $CREATE.
    const chain = await authChain([dag.id('$IMB')], dag);
    expect(named(dag, chain)).toEqual(['$CREATE', '$IJR', '$IMA', '$IPOWER']);
    expect(dag.reads.calls).toBe(3);
  });

  it('counts a starting event that is an auth event of another one', async () => {
    const dag = await room();
    const chain = await authChain([dag.id('$IMB'), dag.id('$IPOWER')], dag);
    expect(named(dag, chain)).toEqual(['$CREATE', '$IJR', '$IMA', '$IPOWER']);
    expect(await authChain([dag.id('$CREATE')], dag)).toEqual(new Set());
  });

  it('throws past maxEvents and accepts a chain of exactly maxEvents', async () => {
    const dag = await room();
    await expect(authChain([dag.id('$IMB')], dag, { maxEvents: 3 })).rejects.toThrow(AuthChainTooLargeError);
    await expect(authChain([dag.id('$IMB')], dag, { maxEvents: 4 })).resolves.toHaveProperty('size', 4);
    await expect(authChain([dag.id('$IMB')], dag, { maxEvents: -1 })).rejects.toThrow(RangeError);
  });

  it('leaves out events the store does not hold and does not walk past them', async () => {
    const dag = await room();
    const withoutJoinRules: EventLookup = {
      getEvents: async (ids) => {
        const found = new Map<string, Pdu>(await dag.getEvents(ids));
        found.delete(dag.id('$IJR'));
        found.delete(dag.id('$IPOWER'));
        return found;
      },
    };
    // Without $IPOWER and $IJR, $IMA is reachable only through them: the chain is just $CREATE.
    expect(named(dag, await authChain([dag.id('$IMB')], withoutJoinRules))).toEqual(['$CREATE']);
  });
});

describe('authDifference', () => {
  it('is the events reachable from some state sets but not all', async () => {
    const dag = await room();
    await dag.addAll([
      powerLevels('$PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$IMC']),
      membership('$MB', ALICE, BOB, 'ban', ['$PA']),
      powerLevels('$PB', BOB, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$PA']),
    ]);
    const banned = dag.stateAfter.get(dag.id('$MB')) as StateMap;
    const changed = dag.stateAfter.get(dag.id('$PB')) as StateMap;
    // $PA and $IMB are in both sets' chains ($MB and $PB name them); the ban and Bob's power levels are not.
    expect(named(dag, await authDifference([banned, changed], dag))).toEqual(['$MB', '$PB']);
    expect(named(dag, await authDifference([changed, banned, banned], dag))).toEqual(['$MB', '$PB']);
    expect(await authDifference([banned], dag)).toEqual(new Set());
    expect(await authDifference([banned, banned], dag)).toEqual(new Set());
  });

  it("counts each state set's own events in its chain, so an unconflicted event is never in the difference", async () => {
    const dag = await room();
    await dag.addAll([
      powerLevels('$PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$IMC']),
      topic('$T', BOB, ['$PA']),
    ]);
    // $PA is in both states. Only $T cites it; counting the state sets' events in their own chains keeps it
    // out of the difference, as Synapse and ruma do.
    const cited = dag.stateAfter.get(dag.id('$T')) as StateMap;
    const uncited = dag.stateAfter.get(dag.id('$PA')) as StateMap;
    expect(named(dag, await authDifference([cited, uncited], dag))).toEqual(['$T']);
  });
});
