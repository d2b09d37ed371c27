import { describe, expect, it } from 'vitest';
import { UnknownAccountError } from '../errors.js';
import { stateOf } from '../replica.js';
import { makeAccount, makeAccount as make, MemoryReplicaStore, withoutHome, writers } from './index.js';

describe('MemoryReplicaStore', () => {
  const account = makeAccount({ homes: 2 });

  it('implements the ReplicaStore port over a replica', async () => {
    const store = new MemoryReplicaStore();
    expect(await store.document(account.serverName)).toBeUndefined();
    expect(store.host(account.document)).toBe(account.serverName);
    expect((await store.document(account.serverName))?.seq).toBe(account.document.seq);
    const [w0] = writers(account);
    const ops = [w0!.devicePut('D1'), w0!.devicePut('D2')];
    const result = await store.applyOps(account.serverName, ops, account.homes[0]!.peerId);
    expect(result.accepted).toHaveLength(2);
    expect(await store.versionVector(account.serverName)).toEqual({ [account.homes[0]!.peerId]: 2 });
    expect(await store.opsMissing(account.serverName, { [account.homes[0]!.peerId]: 1 }, 10)).toEqual([ops[1]]);
    expect(Object.keys(stateOf(store.replica(account.serverName)).devices)).toEqual(['D1', 'D2']);
    const doc2 = withoutHome(account, account.document, account.homes[1]!.peerId, 0);
    expect((await store.offerDocument(account.serverName, doc2, 'x')).seq).toBe(doc2.seq);
    // A replay leaves the newer one in force.
    expect((await store.offerDocument(account.serverName, account.document, 'x')).seq).toBe(doc2.seq);
    expect(store.accounts()).toEqual([account.serverName]);
  });

  it('refuses accounts it does not host', async () => {
    const store = new MemoryReplicaStore();
    await expect(store.versionVector(account.serverName)).rejects.toThrow(UnknownAccountError);
  });

  it('fixtures are deterministic', () => {
    expect(make({ homes: 2 }).document).toEqual(make({ homes: 2 }).document);
    expect(make({ seed: 'x', homes: 1 }).serverName).not.toBe(account.serverName);
  });
});
