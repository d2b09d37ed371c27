import { SecretKey, peerIdFromPublicKey, verifyAccountDocument, type AccountDocument } from '@polyhome/identity';
import { checkPairingProof, newPairingCode, NO_PAIRING, pairingNonce, requestPairingProof } from '@polyhome/p2p';
import { OpWriter, deviceBody, type FixtureAccount } from '@polyhome/sync/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';
import { AccountsService } from './accounts.service.js';
import { startNode, waitFor, type TestNode } from '@polyhome/p2p/testing';

const ADMIN_TOKEN = 'accounts-test-admin-token';

describe.each(SERVER_BACKENDS)('hosted accounts over the admin API on $name', (backend) => {
  let server: TestServer;
  const admin = () => ({
    get: (url: string) => request(server.app.getHttpServer()).get(url).set('Authorization', `Bearer ${ADMIN_TOKEN}`),
    post: (url: string, body: object) =>
      request(server.app.getHttpServer()).post(url).set('Authorization', `Bearer ${ADMIN_TOKEN}`).send(body),
    delete: (url: string, body: object = { reason: 'accounts test' }) =>
      request(server.app.getHttpServer()).delete(url).set('Authorization', `Bearer ${ADMIN_TOKEN}`).send(body),
  });
  const enc = encodeURIComponent;

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('creates a hosted account whose document verifies and names this server', async () => {
    const res = await admin()
      .post('/admin/v1/accounts', { localpart: 'alice', password: 'correct horse battery' })
      .expect(201);
    expect(res.body).toMatchObject({ custody: 'hosted', status: 'active', doc_seq: 1 });
    expect(res.body.user_id).toBe(`@alice:${res.body.server_name}`);
    const detail = await admin()
      .get(`/admin/v1/accounts/${enc(res.body.user_id)}`)
      .expect(200);
    const document = verifyAccountDocument(detail.body.document);
    const node = await admin().get('/admin/v1/node').expect(200);
    expect(document.homes).toEqual([expect.objectContaining({ peer_id: node.body.peer_id, role: 'server' })]);
    expect(detail.body.homes).toEqual([expect.objectContaining({ self: true, pending_ops: 0 })]);
    // The root key is sealed at rest: the stored bytes are not the key.
    const row = await server.resources.repositories.accounts.findByServerName(res.body.server_name);
    if (row === undefined) throw new Error('the account was not stored');
    expect(row.sealedRootKey?.length).toBeGreaterThan(32);
    expect(row.passwordHash).toMatch(/^scrypt\$/);
  });

  it('lists accounts a page at a time', async () => {
    for (const localpart of ['bob', 'carol', 'dave'])
      await admin().post('/admin/v1/accounts', { localpart }).expect(201);
    const first = await admin().get('/admin/v1/accounts?limit=2').expect(200);
    expect(first.body.chunk).toHaveLength(2);
    expect(first.body.next_from).toEqual(expect.any(String));
    const rest = await admin().get(`/admin/v1/accounts?limit=10&from=${first.body.next_from}`).expect(200);
    expect(rest.body.next_from).toBeUndefined();
    const all = [...first.body.chunk, ...rest.body.chunk].map((a: { user_id: string }) => a.user_id);
    expect(all).toHaveLength(4);
    expect([...all].sort()).toEqual(all);
  });

  it('refuses bad input with 400 and an errcode, changing nothing', async () => {
    const before = (await admin().get('/admin/v1/accounts?limit=500').expect(200)).body.chunk.length;
    const cases = [
      admin().post('/admin/v1/accounts', { localpart: 'Not Valid' }),
      admin().post('/admin/v1/accounts', { localpart: 'eve', admin: true }),
      admin().post('/admin/v1/accounts', { localpart: 'eve', password: 'short' }),
      admin().get('/admin/v1/accounts?limit=0'),
      admin().get('/admin/v1/accounts?limit=5&sort=desc'),
      admin().get(`/admin/v1/accounts/${enc('@bad user')}`),
    ];
    for (const res of await Promise.all(cases)) {
      expect(res.status).toBe(400);
      expect(res.body.errcode).toMatch(/^M_/);
    }
    const after = (await admin().get('/admin/v1/accounts?limit=500').expect(200)).body.chunk.length;
    expect(after).toBe(before);
    const unknown = await admin().get(`/admin/v1/accounts/${enc(`@x:${'a'.repeat(64)}`)}`);
    expect([400, 404]).toContain(unknown.status);
  });

  it('refuses a localpart hosted here already with 409 naming the account, unless allow_duplicate_localpart', async () => {
    const first = (await admin().post('/admin/v1/accounts', { localpart: 'twice_' }).expect(201)).body;
    const before = (await admin().get('/admin/v1/accounts?limit=500').expect(200)).body.chunk.length;
    const again = await admin().post('/admin/v1/accounts', { localpart: 'twice_' }).expect(409);
    expect(again.body.errcode).toBe('M_USER_IN_USE');
    expect(again.body.error).toContain(first.user_id);
    expect(again.body.error).toContain('allow_duplicate_localpart');
    expect((await admin().get('/admin/v1/accounts?limit=500').expect(200)).body.chunk.length).toBe(before);
    // Another localpart is not caught by the prefix: `_` is no wildcard, and `twice` is no `twice_`.
    await admin().post('/admin/v1/accounts', { localpart: 'twicex' }).expect(201);
    await admin().post('/admin/v1/accounts', { localpart: 'twice' }).expect(201);
    const second = (
      await admin().post('/admin/v1/accounts', { localpart: 'twice_', allow_duplicate_localpart: true }).expect(201)
    ).body;
    expect(second.user_id).toMatch(/^@twice_:/);
    expect(second.user_id).not.toBe(first.user_id);
    await admin().post('/admin/v1/accounts', { localpart: 'twice_', allow_duplicate_localpart: 'yes' }).expect(400);
  });

  it('deletes one account and nothing of another', async () => {
    const a = (await admin().post('/admin/v1/accounts', { localpart: 'gone' }).expect(201)).body;
    const b = (await admin().post('/admin/v1/accounts', { localpart: 'kept' }).expect(201)).body;
    const accounts = server.app.get(AccountsService);
    await accounts.applyLocal(a.server_name, [
      { op: 'member.set', key: '!r:x', body: { room_id: '!r:x', membership: 'join' } },
    ]);
    await accounts.applyLocal(b.server_name, [
      { op: 'member.set', key: '!r:x', body: { room_id: '!r:x', membership: 'join' } },
    ]);
    await admin()
      .delete(`/admin/v1/accounts/${enc(a.user_id)}`)
      .expect(200);
    expect((await admin().get(`/admin/v1/accounts/${enc(a.user_id)}`)).status).toBe(404);
    const kept = await admin()
      .get(`/admin/v1/accounts/${enc(b.user_id)}/memberships`)
      .expect(200);
    expect(kept.body.chunk).toEqual([{ room_id: '!r:x', membership: 'join' }]);
  });

  it('adds and revokes a home of a hosted account with newly signed documents', async () => {
    const acct = (await admin().post('/admin/v1/accounts', { localpart: 'homes' }).expect(201)).body;
    const laptop = peerIdFromPublicKey(SecretKey.generate().publicKey);
    const added = await admin()
      .post(`/admin/v1/accounts/${enc(acct.user_id)}/homes`, {
        multiaddr: `/ip4/127.0.0.1/tcp/1/p2p/${laptop}`,
        role: 'client',
        name: 'laptop',
      })
      .expect(201);
    expect(verifyAccountDocument(added.body).seq).toBe(2);
    const homes = await admin()
      .get(`/admin/v1/accounts/${enc(acct.user_id)}/homes`)
      .expect(200);
    expect(homes.body.homes.map((h: { name: string }) => h.name)).toEqual(['server', 'laptop']);
    const revoked = await admin()
      .delete(`/admin/v1/accounts/${enc(acct.user_id)}/homes/${laptop}`)
      .expect(200);
    const doc = verifyAccountDocument(revoked.body);
    expect(doc.seq).toBe(3);
    expect(doc.revoked).toEqual({ [laptop]: 0 });
    const self = (await admin().get('/admin/v1/node')).body.peer_id as string;
    const refused = await admin()
      .delete(`/admin/v1/accounts/${enc(acct.user_id)}/homes/${self}`)
      .expect(403);
    expect(refused.body.errcode).toBe('M_FORBIDDEN');
  });

  it('gives concurrent local changes of one account consecutive seqs (no equivocation with itself)', async () => {
    const acct = (await admin().post('/admin/v1/accounts', { localpart: 'concurrent' }).expect(201)).body;
    const accounts = server.app.get(AccountsService);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        accounts.applyLocal(acct.server_name, [
          { op: 'member.set', key: `!c${i}:x`, body: { room_id: `!c${i}:x`, membership: 'join' } },
        ]),
      ),
    );
    const store = server.resources.replicaStore;
    expect(await store.equivocators(acct.server_name)).toEqual([]);
    expect(await store.versionVector(acct.server_name)).toEqual({ [server.resources.p2p.peerId]: 12 });
    expect(Object.keys((await store.state(acct.server_name)).memberships)).toHaveLength(12);
  });

  it('keeps the pairing code of a client added with one, and proves it to that client only', async () => {
    const acct = (await admin().post('/admin/v1/accounts', { localpart: 'pairing' }).expect(201)).body;
    const { host: joiner, addr: joinerAddr, stop } = await startNode({ nodeKey: SecretKey.generate() });
    try {
      const homes = `/admin/v1/accounts/${enc(acct.user_id)}/homes`;
      const bad = await admin().post(homes, { multiaddr: joinerAddr, role: 'client', name: 'p', pairing_code: 'nope' });
      expect(bad.status).toBe(400);
      expect(bad.body.errcode).toBe('M_INVALID_PARAM');
      const code = newPairingCode();
      const forServer = await admin().post(homes, {
        multiaddr: joinerAddr,
        role: 'server',
        name: 'p',
        pairing_code: code,
      });
      expect(forServer.status).toBe(400);
      await admin()
        .post(homes, { multiaddr: joinerAddr, role: 'client', name: 'phone', pairing_code: code })
        .expect(201);

      // The joining node asks the server, as Home.adopt does: a proof over its nonce for this account only.
      const node = (await admin().get('/admin/v1/node')).body as { peer_id: string; listen_addrs: string[] };
      const { multiaddr } = await import('@multiformats/multiaddr');
      await joiner.dial(multiaddr(node.listen_addrs.find((a) => a.includes('/127.0.0.1/'))!));
      const nonce = pairingNonce();
      const answer = await requestPairingProof(joiner, node.peer_id, { account: acct.server_name, nonce });
      const challenge = { account: acct.server_name, joiner: joiner.peerId.toString(), adder: node.peer_id, nonce };
      expect(checkPairingProof(code, challenge, (answer as { mac: string }).mac)).toBe(true);
      const other = (await admin().post('/admin/v1/accounts', { localpart: 'unpaired' }).expect(201)).body;
      expect(
        await requestPairingProof(joiner, node.peer_id, { account: other.server_name, nonce: pairingNonce() }),
      ).toMatchObject({ errcode: NO_PAIRING });
    } finally {
      await stop();
    }
  });

  describe('a client home of a hosted account on real libp2p', () => {
    let client: TestNode & { key: SecretKey };
    let account: { user_id: string; server_name: string };
    let document: AccountDocument;

    beforeAll(async () => {
      const key = SecretKey.generate();
      client = { ...(await startNode({ nodeKey: key })), key };
      account = (await admin().post('/admin/v1/accounts', { localpart: 'synced' }).expect(201)).body;
    });
    afterAll(async () => {
      await client?.stop();
    });

    it('stores and forwards: ops made on the server while the client was away reach it, and its ops reach the server', async () => {
      const accounts = server.app.get(AccountsService);
      // Made before the client is even a home: held by the server, forwarded later.
      await accounts.applyLocal(account.server_name, [
        { op: 'member.set', key: '!early:x', body: { room_id: '!early:x', membership: 'join' } },
      ]);
      const clientAddr = client.addr;
      document = (
        await admin()
          .post(`/admin/v1/accounts/${enc(account.user_id)}/homes`, {
            multiaddr: clientAddr,
            role: 'client',
            name: 'laptop',
          })
          .expect(201)
      ).body;
      client.store.host(document);
      await client.sync.host(account.server_name, client.store);
      const serverAddr = (await admin().get('/admin/v1/node')).body.listen_addrs.find((a: string) =>
        a.includes('/127.0.0.1/'),
      );
      const { multiaddr } = await import('@multiformats/multiaddr');
      await client.host.dial(multiaddr(serverAddr));

      const serverPeer = (await admin().get('/admin/v1/node')).body.peer_id as string;
      await waitFor(
        async () => (await client.store.versionVector(account.server_name))[serverPeer] === 1,
        'the client to receive the op made before it joined',
      );
      const fixture = { serverName: account.server_name, userId: account.user_id } as FixtureAccount;
      const writer = new OpWriter(
        fixture,
        { peerId: peerIdFromPublicKey(client.key.publicKey), secretKey: client.key, home: document.homes[1]! },
        document.seq,
      );
      writer.observe(10);
      const op = writer.make('device.put', 'LAPTOP', { ...deviceBody(fixture, 'LAPTOP') });
      await client.store.applyOps(account.server_name, [op], 'local');
      client.sync.publish(account.server_name, [op]);
      await waitFor(async () => {
        const res = await admin().get(`/admin/v1/accounts/${enc(account.user_id)}/devices`);
        return res.body.chunk?.some((d: { device_id: string }) => d.device_id === 'LAPTOP') ?? false;
      }, 'the server to receive the client’s device');
      const peers = await admin().get('/admin/v1/peers').expect(200);
      expect(peers.body.chunk.map((p: { peer_id: string }) => p.peer_id)).toContain(client.host.peerId.toString());
      const homes = await admin()
        .get(`/admin/v1/accounts/${enc(account.user_id)}/homes`)
        .expect(200);
      const laptop = homes.body.homes.find((h: { name: string }) => h.name === 'laptop');
      expect(laptop).toMatchObject({ connected: true });
      await waitFor(async () => {
        const h = (await admin().get(`/admin/v1/accounts/${enc(account.user_id)}/homes`)).body.homes.find(
          (x: { name: string }) => x.name === 'laptop',
        );
        return h.pending_ops === 0;
      }, 'the client to acknowledge everything');
    });
  });
});
