// Both ends of the client API over libp2p in one process, on real libp2p hosts and real HTTP on 127.0.0.1: a
// stand-in "Matrix API" (an HTTP server that echoes what reached it), a home's gateway forwarding to it, and the
// proxy's HTTP server in front of a second host. What a client sends through the proxy reaches the API as sent
// (binary body, whitelisted headers); the answer comes back with its status and CORS headers; the admin API is
// never reached; caps and a missing API or home are Matrix errors.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createPolyhomeHost, type PolyhomeHost } from '@polyhome/p2p';
import { SecretKey } from '@polyhome/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localUrlOf, serveClientApi, startClientApiProxy, type ClientApiProxy } from './client-api.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

describe('the client API over libp2p, gateway and proxy', () => {
  let api: Server;
  let apiPort: number;
  let home: PolyhomeHost;
  let client: PolyhomeHost;
  let proxy: ClientApiProxy;
  const seen: Seen[] = [];

  beforeAll(async () => {
    api = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
        res.setHeader('access-control-allow-origin', '*');
        res.setHeader('set-cookie', 'session=1');
        res.setHeader('content-type', 'application/octet-stream');
        res.statusCode = req.url?.startsWith('/_matrix/client/v3/missing') === true ? 404 : 200;
        res.end(Buffer.concat(chunks));
      });
    });
    apiPort = await listen(api);
    const init = { listen: ['/ip4/127.0.0.1/tcp/0'], inboundConnectionThreshold: 10_000 };
    home = await createPolyhomeHost({ nodeKey: SecretKey.generate(), ...init });
    client = await createPolyhomeHost({ nodeKey: SecretKey.generate(), ...init });
    await serveClientApi(home, { url: `http://127.0.0.1:${apiPort}/`, maxBodyBytes: 64 * 1024 });
    await client.dial(home.getMultiaddrs()[0]!);
    proxy = await startClientApiProxy({ host: client, home: home.peerId, port: 0, maxBodyBytes: 128 * 1024 });
  });

  afterAll(async () => {
    await proxy?.close();
    await client?.stop();
    await home?.stop();
    await new Promise<void>((resolve) => api?.close(() => resolve()));
  });

  it('carries a binary body and the whitelisted headers to the API, and its answer back', async () => {
    const body = new Uint8Array(50_000).map((_, i) => (i * 13) % 256);
    const res = await fetch(`${proxy.url}/_matrix/media/v3/upload?filename=x.bin`, {
      method: 'POST',
      headers: { Authorization: 'Bearer tok', 'Content-Type': 'application/octet-stream', Cookie: 'c=1' },
      body,
    });
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(body);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('set-cookie')).toBeNull();
    const last = seen.at(-1)!;
    expect(last.url).toBe('/_matrix/media/v3/upload?filename=x.bin');
    expect(last.headers['authorization']).toBe('Bearer tok');
    expect(last.headers['cookie']).toBeUndefined();
    expect(new Uint8Array(last.body)).toEqual(body);
    // The API's status passes through.
    expect((await fetch(`${proxy.url}/_matrix/client/v3/missing`)).status).toBe(404);
  });

  it('never reaches the admin API, even by dot segments', async () => {
    const before = seen.length;
    for (const path of ['/admin/v1/node', '/_matrix/client/%2e%2e/%2e%2e/admin/v1/node']) {
      const res = await fetch(`${proxy.url}${path}`, { headers: { Authorization: 'Bearer admin' } });
      expect(res.status, path).toBe(403);
      expect(((await res.json()) as { errcode: string }).errcode).toBe('M_FORBIDDEN');
    }
    expect(seen.length).toBe(before);
  });

  it("answers 413 for a body over the home's cap and over the proxy's own", async () => {
    for (const size of [64 * 1024 + 1, 128 * 1024 + 1]) {
      const res = await fetch(`${proxy.url}/_matrix/media/v3/upload`, { method: 'POST', body: new Uint8Array(size) });
      expect(res.status, String(size)).toBe(413);
      expect(((await res.json()) as { errcode: string }).errcode).toBe('M_TOO_LARGE');
    }
  });

  it('answers 502 M_UNKNOWN when the API is down, and when the home cannot be reached', async () => {
    await new Promise<void>((resolve) => api.close(() => resolve()));
    const down = await fetch(`${proxy.url}/_matrix/client/versions`);
    expect(down.status).toBe(502);
    expect(((await down.json()) as { errcode: string }).errcode).toBe('M_UNKNOWN');
    await home.stop();
    const gone = await fetch(`${proxy.url}/_matrix/client/versions`);
    expect(gone.status).toBe(502);
    const body = (await gone.json()) as { errcode: string; error: string };
    expect(body.errcode).toBe('M_UNKNOWN');
    expect(body.error).toMatch(/Cannot reach the home .* Check that it runs/);
  });

  it('forwards to the address the HTTP server listens on', () => {
    expect(localUrlOf('0.0.0.0', 8008)).toBe('http://127.0.0.1:8008');
    expect(localUrlOf('::', 8008)).toBe('http://[::1]:8008');
    expect(localUrlOf('10.0.0.5', 8008)).toBe('http://10.0.0.5:8008');
    expect(localUrlOf('fd00::5', 8008)).toBe('http://[fd00::5]:8008');
  });
});
