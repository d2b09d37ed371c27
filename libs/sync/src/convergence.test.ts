// Convergence in the manner of Yjs's random tests, with fast-check, on the in-memory replica: the network
// and its checks are in testing/network.ts, shared with the store compliance suite of libs/storage (which
// runs them on PostgreSQL and PGlite too). fast-check prints `seed` and `path` of a failing run; replay it
// with SYNC_SEED, or fc.assert(..., { seed, path }).
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { flaggedOrigins, pendingCount, stateOf } from './replica.js';
import { makeAccount, MemoryReplicaStore, networkAction, runNetwork } from './testing/index.js';

const RUNS = Number(process.env.SYNC_CONVERGENCE_RUNS ?? 200);

describe('convergence of replicas over a lossy, reordering, partitioning network', () => {
  // The timeout grows with SYNC_CONVERGENCE_RUNS, for long soak runs.
  it(`converges on ${RUNS} seeded random runs`, { timeout: 30_000 + RUNS * 100 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 3, max: 7 }),
        fc.array(networkAction, { minLength: 10, maxLength: 100, size: 'max' }),
        async (homes, actions) => {
          const account = makeAccount({ seed: `convergence-${homes}`, homes });
          const replicas = account.homes.map(() => {
            const store = new MemoryReplicaStore();
            store.host(account.document);
            return {
              store,
              state: async (name: string) => stateOf(store.replica(name)),
              pendingCount: async (name: string) => pendingCount(store.replica(name)),
              flaggedOrigins: async (name: string) => flaggedOrigins(store.replica(name)),
            };
          });
          await runNetwork(account, replicas, actions);
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
