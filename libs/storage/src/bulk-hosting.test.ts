import { makeAccount, writers } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from './data-source.js';
import { AccountEntity } from './entities/account.entity.js';
import { SqlReplicaStore } from './replica-store.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';

describe.each(STORAGE_BACKENDS)('bulk hosting and set-based listing on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlReplicaStore;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    store = new SqlReplicaStore(storage.dataSource);
  });
  afterAll(async () => {
    await storage.close();
    await db.dispose();
  });

  const accounts = Array.from({ length: 7 }, (_, i) => makeAccount({ seed: `bulk-${i}`, homes: 1 + (i % 3) }));

  it('hosts many accounts in one call, each readable as if hosted one by one', async () => {
    const names = await store.hostAccounts(
      accounts.map((a) => a.document),
      { custody: 'self' },
    );
    expect(names).toEqual(accounts.map((a) => a.serverName));
    for (const a of accounts) expect(await store.document(a.serverName)).toEqual(a.document);
    expect(await storage.dataSource.getRepository(AccountEntity).count()).toBe(accounts.length);
  });

  it('writes nothing when one document of the batch is invalid or already hosted', async () => {
    const fresh = makeAccount({ seed: 'bulk-fresh', homes: 1 });
    const forged = { ...makeAccount({ seed: 'bulk-forged', homes: 1 }).document, seq: 9 };
    await expect(store.hostAccounts([fresh.document, forged], { custody: 'self' })).rejects.toThrow();
    await expect(store.hostAccounts([fresh.document, accounts[0]!.document], { custody: 'self' })).rejects.toThrow();
    expect(await store.document(fresh.serverName)).toBeUndefined();
    expect(await storage.dataSource.getRepository(AccountEntity).count()).toBe(accounts.length);
  });

  it('lists accounts with their homes a page at a time, in server-name order, each once', async () => {
    const seen: Array<{ account: string; homes: string[] }> = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.listHomes({ after, limit: 3 });
      seen.push(...page);
      if (page.length < 3) break;
      after = page[page.length - 1]!.account;
    }
    const expected = accounts
      .map((a) => ({ account: a.serverName, homes: a.homes.map((h) => h.peerId) }))
      .sort((x, y) => x.account.localeCompare(y.account));
    expect(seen).toEqual(expected);
  });

  it('pages through documents in force', async () => {
    const first = await store.documentsPage({ limit: 4 });
    const rest = await store.documentsPage({ after: first[first.length - 1]!.account, limit: 4 });
    expect([...first, ...rest].map((r) => r.document)).toEqual(
      [...accounts].sort((x, y) => x.serverName.localeCompare(y.serverName)).map((a) => a.document),
    );
  });

  it('names the homes that lack ops, per what each acknowledged, never this home', async () => {
    const behind = async (...exclude: string[]): Promise<Array<{ account: string; peer: string }>> => {
      const out: Array<{ account: string; peer: string }> = [];
      let after: string | undefined;
      do {
        const page = await store.homesBehind(exclude, { after, limit: 2 });
        out.push(...page.behind);
        after = page.next;
      } while (after !== undefined);
      return out;
    };
    const three = accounts.find((a) => a.homes.length === 3)!;
    const [self, second, third] = three.homes;
    expect(await behind(self!.peerId)).toEqual([]); // no ops anywhere yet

    const [w0] = writers(three);
    const result = await store.applyOps(three.serverName, [w0!.devicePut('DEV1'), w0!.devicePut('DEV2')], 'x');
    expect(result.accepted).toHaveLength(2);
    const sorted = (rows: Array<{ account: string; peer: string }>) =>
      [...rows].sort((x, y) => x.peer.localeCompare(y.peer));
    expect(sorted(await behind(self!.peerId))).toEqual(
      sorted([
        { account: three.serverName, peer: second!.peerId },
        { account: three.serverName, peer: third!.peerId },
      ]),
    );

    await store.recordAck(three.serverName, second!.peerId, { [self!.peerId]: 2 });
    await store.recordAck(three.serverName, third!.peerId, { [self!.peerId]: 1 });
    expect(await behind(self!.peerId)).toEqual([{ account: three.serverName, peer: third!.peerId }]);
    // Seen from the third home: the first home made the ops (never lacks its own), the second acknowledged them.
    expect(await behind(third!.peerId)).toEqual([]);
    // Sibling instances on this database read the same op log: never behind.
    expect(await behind(self!.peerId, third!.peerId)).toEqual([]);
    expect(await behind(self!.peerId, second!.peerId)).toEqual([{ account: three.serverName, peer: third!.peerId }]);
  });
});
