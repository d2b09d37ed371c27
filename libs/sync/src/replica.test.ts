import { describe, expect, it } from 'vitest';
import { applyOps, createReplica, nextLamport, opsMissing, stateOf, versionVector } from './replica.js';
import { makeAccount, writers } from './testing/index.js';

describe('replica (smoke)', () => {
  it('applies a device.put and shows the device', () => {
    const account = makeAccount({ homes: 2 });
    const [a] = writers(account);
    let replica = createReplica(account.document);
    const op = a!.devicePut('DEV1');
    let result;
    [replica, result] = applyOps(replica, [op]);
    expect(result.rejected).toEqual([]);
    expect(result.accepted).toHaveLength(1);
    expect(Object.keys(stateOf(replica).devices)).toEqual(['DEV1']);
    expect(versionVector(replica)).toEqual({ [account.homes[0]!.peerId]: 1 });
    expect(opsMissing(replica, {}, 10)).toHaveLength(1);
    expect(nextLamport(replica)).toBe(2);
  });
});
