// The repositories the apps use instead of the DataSource, on both engines (PostgreSQL and PGlite).
import { makeAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from '../data-source.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from '../testing/backends.js';
import { createRepositories, type StorageRepositories } from './storage-repositories.js';

describe.each(STORAGE_BACKENDS)('storage repositories on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let repos: StorageRepositories;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    repos = createRepositories(storage);
  });
  afterAll(async () => {
    await storage.close();
    await db.dispose();
  });

  const alice = makeAccount({ seed: 'repo-alice', localpart: 'alice', homes: 2 });
  const bob = makeAccount({ seed: 'repo-bob', localpart: 'bob', homes: 1 });
  const carol = makeAccount({ seed: 'repo-carol', localpart: 'carol', homes: 1 });

  describe('accounts', () => {
    beforeAll(async () => {
      await repos.replica.hostAccount(alice.document, { custody: 'hosted', sealedRootKey: Buffer.from('sealed') });
      await repos.replica.hostAccount(bob.document, { custody: 'self' });
      await repos.replica.hostAccount(carol.document, { custody: 'self' });
    });

    it('finds by server name, counts, lists by user id and pages by server name', async () => {
      expect(await repos.accounts.findByServerName(alice.serverName)).toMatchObject({
        serverName: alice.serverName,
        userId: alice.userId,
        custody: 'hosted',
        status: 'active',
        docSeq: String(alice.document.seq),
      });
      expect(await repos.accounts.findByServerName('0'.repeat(64))).toBeUndefined();
      expect(await repos.accounts.count()).toBe(3);
      expect((await repos.accounts.listByUserId()).map((a) => a.userId)).toEqual(
        [alice, bob, carol].map((a) => a.userId).sort(),
      );
      const byName = [alice, bob, carol].map((a) => a.serverName).sort();
      const first = await repos.accounts.page({ limit: 2 });
      expect(first.map((a) => a.serverName)).toEqual(byName.slice(0, 2));
      const rest = await repos.accounts.page({ after: first.at(-1)!.serverName, limit: 2 });
      expect(rest.map((a) => a.serverName)).toEqual(byName.slice(2));
    });

    it('sets a password hash', async () => {
      await repos.accounts.setPasswordHash(alice.serverName, 'scrypt$x');
      expect((await repos.accounts.findByServerName(alice.serverName))?.passwordHash).toBe('scrypt$x');
    });

    it('releases custody once, even to concurrent callers', async () => {
      const results = await Promise.all([
        repos.accounts.releaseCustody(alice.serverName),
        repos.accounts.releaseCustody(alice.serverName),
      ]);
      expect(results.sort()).toEqual([false, true]);
      expect(await repos.accounts.findByServerName(alice.serverName)).toMatchObject({
        custody: 'self',
        sealedRootKey: null,
      });
      expect(await repos.accounts.releaseCustody(bob.serverName)).toBe(false);
    });

    it('finds the accounts whose document in force names a home', async () => {
      const second = alice.homes[1]!.peerId;
      expect(await repos.accounts.namingHome(second)).toEqual([alice.serverName]);
      expect((await repos.accounts.namingHome(alice.homes[0]!.peerId)).sort()).toEqual([alice.serverName]);
      expect(await repos.accounts.namingHome('12D3KooWnobody')).toEqual([]);
    });

    it('removes an account and its rows', async () => {
      expect(await repos.accounts.remove(carol.serverName)).toBe(true);
      expect(await repos.accounts.remove(carol.serverName)).toBe(false);
      expect(await repos.replica.document(carol.serverName)).toBeUndefined();
      expect(await repos.accounts.count()).toBe(2);
    });
  });

  describe('home nodes', () => {
    it('registers a home once, refreshing it on a later start', async () => {
      const home = { peerId: '12D3KooWhome', publicKey: new Uint8Array(32).fill(7), role: 'server' as const };
      await repos.homeNodes.register(home);
      await repos.homeNodes.register(home);
      await repos.homeNodes.register({ ...home, peerId: '12D3KooWother' });
      expect((await repos.homeNodes.peerIds()).sort()).toEqual(['12D3KooWhome', '12D3KooWother']);
    });
  });

  describe('enrollment tokens and transactions', () => {
    const hour = 60 * 60 * 1000;

    it('creates, pages, finds and removes tokens by their hash and id', async () => {
      await repos.enrollmentTokens.create({ tokenHash: 'a'.repeat(64), id: 'id-a', usesLeft: 2, expiresAt: null });
      await repos.enrollmentTokens.create({
        tokenHash: 'b'.repeat(64),
        id: 'id-b',
        usesLeft: 1,
        expiresAt: new Date(Date.now() + hour),
      });
      expect((await repos.enrollmentTokens.page({ limit: 1 })).map((t) => t.id)).toEqual(['id-a']);
      expect((await repos.enrollmentTokens.page({ after: 'id-a', limit: 5 })).map((t) => t.id)).toEqual(['id-b']);
      expect(await repos.enrollmentTokens.findByHash('a'.repeat(64))).toMatchObject({ id: 'id-a', usesLeft: 2 });
      expect(await repos.enrollmentTokens.findByHash('c'.repeat(64))).toBeUndefined();
      expect(await repos.enrollmentTokens.removeById('id-b')).toBe(true);
      expect(await repos.enrollmentTokens.removeById('id-b')).toBe(false);
    });

    it('spends the last use once when two transactions race for it', async () => {
      await repos.enrollmentTokens.create({ tokenHash: 'd'.repeat(64), id: 'id-d', usesLeft: 1, expiresAt: null });
      const spent = await Promise.all(
        [0, 1].map(() => repos.transactions.run((tx) => repos.enrollmentTokens.spend('d'.repeat(64), new Date(), tx))),
      );
      expect(spent.sort()).toEqual([false, true]);
      expect((await repos.enrollmentTokens.findByHash('d'.repeat(64)))?.usesLeft).toBe(0);
    });

    it('does not spend an expired token', async () => {
      const expiresAt = new Date(Date.now() + hour);
      await repos.enrollmentTokens.create({ tokenHash: 'e'.repeat(64), id: 'id-e', usesLeft: 3, expiresAt });
      const later = new Date(expiresAt.getTime() + 1);
      expect(await repos.transactions.run((tx) => repos.enrollmentTokens.spend('e'.repeat(64), later, tx))).toBe(false);
      expect((await repos.enrollmentTokens.findByHash('e'.repeat(64)))?.usesLeft).toBe(3);
    });

    it('rolls back a spent use and a hosted account together', async () => {
      const dave = makeAccount({ seed: 'repo-dave', localpart: 'dave', homes: 1 });
      await repos.enrollmentTokens.create({ tokenHash: 'f'.repeat(64), id: 'id-f', usesLeft: 1, expiresAt: null });
      const failing = repos.transactions.run(async (tx) => {
        expect(await repos.enrollmentTokens.spend('f'.repeat(64), new Date(), tx)).toBe(true);
        expect((await repos.enrollmentTokens.findByHash('f'.repeat(64), tx))?.usesLeft).toBe(0);
        await repos.replica.hostAccount(dave.document, { custody: 'self', transaction: tx });
        throw new Error('refused after both writes');
      });
      await expect(failing).rejects.toThrow('refused after both writes');
      expect((await repos.enrollmentTokens.findByHash('f'.repeat(64)))?.usesLeft).toBe(1);
      expect(await repos.accounts.findByServerName(dave.serverName)).toBeUndefined();
      await repos.transactions.run(async (tx) => {
        await repos.enrollmentTokens.spend('f'.repeat(64), new Date(), tx);
        await repos.replica.hostAccount(dave.document, { custody: 'self', transaction: tx });
      });
      expect((await repos.enrollmentTokens.findByHash('f'.repeat(64)))?.usesLeft).toBe(0);
      expect((await repos.accounts.findByServerName(dave.serverName))?.userId).toBe(dave.userId);
    });
  });

  describe('login tokens', () => {
    it('are spent once', async () => {
      const { token } = await repos.loginTokens.create(bob.serverName, 60_000);
      expect(await repos.loginTokens.consume(token)).toEqual({ ok: true, serverName: bob.serverName });
      expect(await repos.loginTokens.consume(token)).toEqual({ ok: false, reason: 'unknown' });
    });
  });
});
