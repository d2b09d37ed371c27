// Test support for @polyhome/sync and the packages built on it: an in-memory ReplicaStore and
// deterministic fixtures (accounts, homes and op factories from seeds).
export { MemoryReplicaStore } from './memory-store.js';
export {
  FIXTURE_TS,
  KIND_SAMPLES,
  OpWriter,
  SAMPLE_VERIFIER,
  crossSigningBody,
  crossSigningKeys,
  deviceBody,
  deviceKey,
  groundOp,
  makeAccount,
  makeHome,
  memberBody,
  seedFrom,
  withHome,
  withoutHome,
  withCrossSigningMaster,
  writers,
} from './fixtures.js';
export type { CrossSigningKeySet, FixtureAccount, FixtureHome, KindSample, MakeAccountOptions } from './fixtures.js';
export { pump, deliver, wire } from './driver.js';
export type { Delivery } from './driver.js';
export { networkAction, runNetwork } from './network.js';
export type { NetworkAction, NetworkReplica, RunStats } from './network.js';
