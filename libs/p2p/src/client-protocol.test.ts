// /polyhome/client/1.0.0 between real libp2p hosts on 127.0.0.1: binary bodies and whitelisted headers both ways,
// the path whitelist (no /admin, no dot segments), methods, the body cap, and a flood over the per-peer cap
// answered 429 while another peer is still served.
import { SecretKey } from '@polyhome/identity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPolyhomeHost, type PolyhomeHost } from './host.js';
import {
  clientApiPathRefusal,
  clientApiRequest,
  createClientApiServer,
  type ClientApiRequest,
  type ClientApiResponse,
  type ClientApiServer,
  type ClientApiServerInit,
} from './index.js';
import { waitFor } from './testing/index.js';

async function startHost(): Promise<PolyhomeHost> {
  return createPolyhomeHost({
    nodeKey: SecretKey.generate(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
    connectionLimits: { maxStrangerConnectionsPerIp: 10_000 },
  });
}

describe('/polyhome/client/1.0.0', () => {
  let home: PolyhomeHost;
  let proxy: PolyhomeHost;
  let other: PolyhomeHost;
  let server: ClientApiServer | undefined;
  let calls: ClientApiRequest[];
  let behaviour: (request: ClientApiRequest) => Promise<ClientApiResponse>;

  beforeAll(async () => {
    [home, proxy, other] = await Promise.all([startHost(), startHost(), startHost()]);
    for (const host of [proxy, other]) await host.dial(home.getMultiaddrs()[0]!);
  });

  afterAll(async () => {
    for (const host of [home, proxy, other]) await host?.stop();
  });

  beforeEach(async () => {
    await server?.stop();
    server = undefined;
    calls = [];
    behaviour = (request) =>
      Promise.resolve({
        status: 200,
        headers: [
          ['content-type', 'application/octet-stream'],
          ['access-control-allow-origin', '*'],
          ['set-cookie', 'dropped=1'],
        ],
        body: request.body ?? new Uint8Array(0),
      });
  });

  async function serve(init: Partial<ClientApiServerInit> = {}): Promise<ClientApiServer> {
    server = createClientApiServer(home, {
      forward: (request) => {
        calls.push(request);
        return behaviour(request);
      },
      ...init,
    });
    await server.start();
    return server;
  }

  it('carries a binary body both ways with the whitelisted headers only', async () => {
    await serve();
    const body = new Uint8Array(300_000).map((_, i) => (i * 31) % 256);
    const answer = await clientApiRequest(proxy, home.peerId, {
      method: 'POST',
      target: '/_matrix/media/v3/upload?filename=a.bin',
      headers: [
        ['Authorization', 'Bearer t'],
        ['Content-Type', 'application/octet-stream'],
        ['Cookie', 'not-carried'],
        ['X-Forwarded-For', '203.0.113.9'],
      ],
      body,
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(body);
    expect(answer.headers).toEqual([
      ['content-type', 'application/octet-stream'],
      ['access-control-allow-origin', '*'],
    ]);
    expect(calls[0]!.target).toBe('/_matrix/media/v3/upload?filename=a.bin');
    expect(calls[0]!.headers).toEqual([
      ['authorization', 'Bearer t'],
      ['content-type', 'application/octet-stream'],
    ]);
    expect(calls[0]!.peerId.toString()).toBe(proxy.peerId.toString());
  });

  it('refuses paths outside the client API, dot segments and other methods, before the forward', async () => {
    await serve();
    for (const target of [
      '/admin/v1/node',
      '/_matrix/client/../../admin/v1/node',
      '/_matrix/client/%2E%2e/admin',
      '/_matrix/client\\..\\admin',
      '/_matrix/federation/v1/version',
      '/_matrix/clientx',
      '/health',
    ]) {
      const answer = await clientApiRequest(proxy, home.peerId, { method: 'GET', target });
      expect(answer.status, target).toBe(403);
      expect(JSON.parse(new TextDecoder().decode(answer.body)), target).toMatchObject({ errcode: 'M_FORBIDDEN' });
    }
    const trace = await clientApiRequest(proxy, home.peerId, { method: 'TRACE', target: '/_matrix/client/versions' });
    expect(trace.status).toBe(405);
    expect(calls).toEqual([]);
    expect(server!.counts.forbidden).toBe(8);
    // What is served: the three prefixes.
    expect(clientApiPathRefusal('/_matrix/client/v3/sync')).toBeUndefined();
    expect(clientApiPathRefusal('/_matrix/media/v3/upload')).toBeUndefined();
    expect(clientApiPathRefusal('/.well-known/matrix/client')).toBeUndefined();
  });

  it('answers 413 M_TOO_LARGE for a body over the cap without reading it', async () => {
    await serve({ maxBodyBytes: 1024 });
    const answer = await clientApiRequest(proxy, home.peerId, {
      method: 'POST',
      target: '/_matrix/media/v3/upload',
      body: new Uint8Array(100_000),
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(new TextDecoder().decode(answer.body))).toMatchObject({ errcode: 'M_TOO_LARGE' });
    expect(calls).toEqual([]);
  });

  it('answers a flood over the per-peer cap with 429 while another peer is served, then serves again', async () => {
    await serve({ maxConcurrentPerPeer: 4 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    behaviour = async () => {
      await gate;
      return { status: 200, headers: [], body: new Uint8Array(0) };
    };
    const held = [1, 2, 3, 4].map(() =>
      clientApiRequest(proxy, home.peerId, { method: 'GET', target: '/_matrix/client/v3/sync?timeout=30000' }),
    );
    await waitFor(() => calls.length === 4, 'four long polls in the forward');
    const flood = await Promise.all(
      Array.from({ length: 20 }, () =>
        clientApiRequest(proxy, home.peerId, { method: 'GET', target: '/_matrix/client/versions' }),
      ),
    );
    expect(flood.map((a) => a.status)).toEqual(Array.from({ length: 20 }, () => 429));
    expect(JSON.parse(new TextDecoder().decode(flood[0]!.body))).toMatchObject({
      errcode: 'M_LIMIT_EXCEEDED',
      retry_after_ms: 1000,
    });
    const otherPeer = clientApiRequest(other, home.peerId, { method: 'GET', target: '/_matrix/client/versions' });
    await waitFor(() => calls.length === 5, "the other peer's request in the forward");
    release();
    expect((await Promise.all([...held, otherPeer])).map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(server!.counts.limited).toBe(20);
    expect(server!.inFlight).toBe(0);
  });

  it('answers 502 M_UNKNOWN when the forward fails', async () => {
    await serve();
    behaviour = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8008'));
    const answer = await clientApiRequest(proxy, home.peerId, { method: 'GET', target: '/_matrix/client/versions' });
    expect(answer.status).toBe(502);
    const body = JSON.parse(new TextDecoder().decode(answer.body)) as { errcode: string; error: string };
    expect(body.errcode).toBe('M_UNKNOWN');
    expect(body.error).not.toContain('ECONNREFUSED');
  });
});
