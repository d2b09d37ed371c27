// /polyhome/federation/1.0.0 between real libp2p hosts on 127.0.0.1: round trips, the caller's PeerId, and every
// defence of the server (authorize, caps, deadlines, concurrency) and of the caller (time, abort, answer size).
// Hostile callers write raw bytes on a stream, so the server is shown to refuse before a body was even sent.
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { byteStream } from '@libp2p/utils';
import { SecretKey } from '@polyhome/identity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPolyhomeHost, type PolyhomeHost } from './host.js';
import {
  createFederationServer,
  federationRequest,
  FEDERATION_PROTOCOL,
  FederationAbortedError,
  FederationBadResponseError,
  FederationResponseTooLargeError,
  FederationTimeoutError,
  FederationUnreachableError,
  InvalidFederationRequestError,
  type FederationRequest,
  type FederationResponse,
  type FederationServer,
  type FederationServerInit,
} from './index.js';
import { recordingLogger, waitFor, type RecordingLogger } from './testing/index.js';

async function startHost(): Promise<PolyhomeHost> {
  return createPolyhomeHost({
    nodeKey: SecretKey.generate(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
    connectionLimits: { maxStrangerConnectionsPerIp: 10_000 },
  });
}

/** What a raw exchange got back: the status and JSON body of the answer, and the stream's status once read. */
interface RawAnswer {
  status: number;
  body: Record<string, unknown>;
  /** 'reset' when the server aborted the stream, 'open' when it only closed its end. */
  statusAtEnd: Stream['status'];
}

/** Writes `bytes` on a new federation stream and reads the answer until the server ends its side. */
async function rawExchange(from: Libp2p, to: PeerId, bytes: string): Promise<RawAnswer> {
  const stream = await from.dialProtocol(to, FEDERATION_PROTOCOL);
  const io = byteStream(stream);
  await io.write(new TextEncoder().encode(bytes));
  const chunks: Uint8Array[] = [];
  for (;;) {
    let chunk;
    try {
      chunk = await io.read({ signal: AbortSignal.timeout(10_000) });
    } catch {
      break; // the server aborted after its answer (a 408)
    }
    if (chunk === null) break;
    chunks.push(chunk.subarray());
  }
  const statusAtEnd = stream.status;
  await stream.close().catch(() => undefined); // already reset after a 408
  const text = Buffer.concat(chunks).toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1]);
  return { status, body: JSON.parse(text.slice(end + 4)) as Record<string, unknown>, statusAtEnd };
}

function federationStreams(host: Libp2p, peer: PeerId): number {
  return host
    .getConnections(peer)
    .flatMap((c) => c.streams)
    .filter((s) => s.protocol === FEDERATION_PROTOCOL).length;
}

describe('/polyhome/federation/1.0.0', () => {
  let server: PolyhomeHost;
  let caller: PolyhomeHost;
  let stranger: PolyhomeHost;
  let federation: FederationServer | undefined;
  let logger: RecordingLogger;
  let calls: FederationRequest[];
  let behaviour: (request: FederationRequest) => Promise<FederationResponse> | FederationResponse;

  /** Replaces the running federation server by one with these options. */
  async function serve(init: Omit<FederationServerInit, 'handler'> = {}): Promise<FederationServer> {
    await federation?.stop();
    federation = createFederationServer(server, {
      logger,
      ...init,
      handler: (request) => {
        calls.push(request);
        return behaviour(request);
      },
    });
    await federation.start();
    return federation;
  }

  beforeAll(async () => {
    [server, caller, stranger] = await Promise.all([startHost(), startHost(), startHost()]);
    await Promise.all([caller.dial(server.getMultiaddrs()[0]!), stranger.dial(server.getMultiaddrs()[0]!)]);
  });
  afterAll(async () => {
    await federation?.stop();
    await Promise.all([server.stop(), caller.stop(), stranger.stop()]);
  });
  beforeEach(async () => {
    logger = recordingLogger();
    calls = [];
    behaviour = (request) => ({
      status: 200,
      body: { method: request.method, path: request.path, echo: request.body },
    });
    await serve();
  });

  it('carries a GET with a query and a PUT with a JSON body; the handler sees the caller PeerId noise proved', async () => {
    const got = await federationRequest(caller, server.peerId, {
      method: 'GET',
      path: '/_matrix/federation/v1/backfill/%21room%3Aa.example',
      query: { v: ['$one', '$two'], limit: '10' },
    });
    expect(got).toEqual({
      status: 200,
      body: { method: 'GET', path: '/_matrix/federation/v1/backfill/%21room%3Aa.example' },
    });
    expect(calls[0]!.query.getAll('v')).toEqual(['$one', '$two']);
    expect(calls[0]!.query.get('limit')).toBe('10');
    expect(calls[0]!.body).toBeUndefined();
    expect(calls[0]!.peerId.equals(caller.peerId)).toBe(true);

    const txn = { origin: 'a.example', pdus: [{ content: { body: 'héllo ✓' } }], edus: [] };
    const put = await federationRequest(caller, server.peerId, {
      method: 'PUT',
      path: '/_matrix/federation/v1/send/txn1',
      body: txn,
    });
    expect(put).toEqual({ status: 200, body: { method: 'PUT', path: '/_matrix/federation/v1/send/txn1', echo: txn } });
    expect(calls[1]!.peerId.toString()).toBe(caller.peerId.toString());
    expect(federation!.counts.handled).toBe(2);
  });

  it('passes the handler status and errors through (an unknown path is the handler 404)', async () => {
    behaviour = () => ({ status: 404, body: { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' } });
    const got = await federationRequest(caller, server.peerId, { method: 'GET', path: '/_matrix/federation/v9/nope' });
    expect(got).toEqual({ status: 404, body: { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' } });
  });

  it('refuses a stranger with 403 before its body is read: the handler is never called', async () => {
    const seen: string[] = [];
    await serve({
      authorize: (peerId, head) => {
        seen.push(`${peerId.toString()} ${head.method} ${head.path}`);
        return peerId.equals(caller.peerId);
      },
    });
    // The head announces 1000 bytes of body and none is sent: the answer cannot have waited for it.
    const refused = await rawExchange(
      stranger,
      server.peerId,
      'PUT /_matrix/federation/v1/send/t HTTP/1.1\r\nContent-Length: 1000\r\n\r\n',
    );
    expect(refused.status).toBe(403);
    expect(refused.body.errcode).toBe('M_FORBIDDEN');
    expect(seen).toEqual([`${stranger.peerId.toString()} PUT /_matrix/federation/v1/send/t`]);
    const allowed = await federationRequest(caller, server.peerId, { method: 'PUT', path: '/x', body: { a: 1 } });
    expect(allowed.status).toBe(200);
    expect(calls.map((c) => c.peerId.toString())).toEqual([caller.peerId.toString()]);
    expect(federation!.counts.forbidden).toBe(1);
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        level: 'debug',
        msg: 'federation request refused',
        fields: expect.objectContaining({ peer: stranger.peerId.toString(), status: 403, errcode: 'M_FORBIDDEN' }),
      }),
    );
  });

  it('refuses a body over the cap with 413 from its Content-Length alone, and the handler is never called', async () => {
    await serve({ maxBodyBytes: 1024 });
    const raw = await rawExchange(caller, server.peerId, 'PUT /_matrix/x HTTP/1.1\r\nContent-Length: 1025\r\n\r\n');
    expect(raw.status).toBe(413);
    expect(raw.body.errcode).toBe('M_TOO_LARGE');
    const big = await federationRequest(caller, server.peerId, {
      method: 'PUT',
      path: '/_matrix/x',
      body: { filler: 'x'.repeat(64 * 1024) },
    });
    expect(big.status).toBe(413);
    // Past the default 4 MiB and far past yamux's window: the caller still reads the early 413.
    await serve();
    const huge = await federationRequest(caller, server.peerId, {
      method: 'PUT',
      path: '/_matrix/x',
      body: { filler: 'x'.repeat(5 * 1024 * 1024) },
    });
    expect(huge.status).toBe(413);
    expect(calls).toEqual([]);
    expect(federation!.counts.tooLarge).toBe(1);
  });

  it('refuses JSON nested deeper than the cap with 400 M_BAD_JSON', async () => {
    await serve({ maxJsonDepth: 8 });
    const deep = JSON.parse(`${'{"a":'.repeat(9)}1${'}'.repeat(9)}`) as unknown;
    const refused = await federationRequest(caller, server.peerId, { method: 'PUT', path: '/x', body: deep });
    expect(refused.status).toBe(400);
    expect((refused.body as Record<string, unknown>).errcode).toBe('M_BAD_JSON');
    // Brackets inside strings are not nesting.
    const fine = await federationRequest(caller, server.peerId, {
      method: 'PUT',
      path: '/x',
      body: { s: '[[[[[[[[[[' },
    });
    expect(fine.status).toBe(200);
    expect(calls).toHaveLength(1);
  });

  it('refuses a body that is not JSON (400 M_NOT_JSON) or not an object (400 M_BAD_JSON)', async () => {
    const body = '{"a": 1,';
    const notJson = await rawExchange(
      caller,
      server.peerId,
      `PUT /x HTTP/1.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    expect(notJson.status).toBe(400);
    expect(notJson.body.errcode).toBe('M_NOT_JSON');
    const array = await federationRequest(caller, server.peerId, { method: 'PUT', path: '/x', body: [1, 2] });
    expect(array.status).toBe(400);
    expect((array.body as Record<string, unknown>).errcode).toBe('M_BAD_JSON');
    const junk = await rawExchange(caller, server.peerId, 'HELLO\r\n\r\n');
    expect(junk.status).toBe(400);
    expect(calls).toEqual([]);
    expect(federation!.counts.malformed).toBe(3);
  });

  it('answers a caller that stalls in its head or its body with 408 and aborts the stream', async () => {
    await serve({ headTimeout: 300, readTimeout: 600 });
    const head = await rawExchange(caller, server.peerId, 'PUT /_matrix/federation/v1/send/t HTTP/1.1\r\nContent-Le');
    expect(head.status).toBe(408);
    const body = await rawExchange(caller, server.peerId, 'PUT /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"half":');
    expect(body.status).toBe(408);
    expect([head.statusAtEnd, body.statusAtEnd]).toEqual(['reset', 'reset']);
    await waitFor(() => federationStreams(server, caller.peerId) === 0, 'no federation stream left on the server');
    expect(calls).toEqual([]);
    expect(federation!.counts.timedOut).toBe(2);
  });

  it('answers 429 M_LIMIT_EXCEEDED with retry_after_ms over the per-peer cap, and serves again once under it', async () => {
    await serve({ maxConcurrentPerPeer: 2 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    behaviour = async () => {
      await gate;
      return { status: 200, body: {} };
    };
    const first = [1, 2].map(() => federationRequest(caller, server.peerId, { method: 'GET', path: '/slow' }));
    await waitFor(() => calls.length === 2, 'two requests in the handler');
    const third = await federationRequest(caller, server.peerId, { method: 'GET', path: '/slow' });
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: 1000 });
    // Another peer has its own share.
    const other = federationRequest(stranger, server.peerId, { method: 'GET', path: '/slow' });
    await waitFor(() => calls.length === 3, "the other peer's request in the handler");
    release();
    expect((await Promise.all([...first, other])).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await federationRequest(caller, server.peerId, { method: 'GET', path: '/slow' })).status).toBe(200);
    expect(federation!.counts.limited).toBe(1);
    expect(federation!.inFlight).toBe(0);
  });

  it('answers 429 when the bodies in flight would pass the byte budget', async () => {
    await serve({ maxBodyBytesInFlight: 100 });
    const raw = await rawExchange(caller, server.peerId, 'PUT /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n');
    expect(raw.status).toBe(429);
    expect(raw.body.errcode).toBe('M_LIMIT_EXCEEDED');
    expect((await federationRequest(caller, server.peerId, { method: 'PUT', path: '/x', body: { a: 1 } })).status).toBe(
      200,
    );
  });

  it('answers 500 M_UNKNOWN without the stack when the handler throws, and logs the error', async () => {
    behaviour = () => {
      throw new Error('database at /secret/path is down');
    };
    const got = await federationRequest(caller, server.peerId, { method: 'GET', path: '/x' });
    expect(got).toEqual({ status: 500, body: { errcode: 'M_UNKNOWN', error: 'Internal server error.' } });
    expect(logger.entries.some((e) => e.level === 'error' && e.msg === 'federation handler threw')).toBe(true);
    expect(federation!.counts.failed).toBe(1);
  });

  it('answers 504 when the handler runs past the request deadline, with its signal aborted', async () => {
    await serve({ requestTimeout: 300 });
    let handlerSignal: AbortSignal | undefined;
    behaviour = (request) => {
      handlerSignal = request.signal;
      return new Promise(() => undefined);
    };
    const got = await federationRequest(caller, server.peerId, { method: 'GET', path: '/x' });
    expect(got.status).toBe(504);
    expect(handlerSignal?.aborted).toBe(true);
    expect(federation!.counts.timedOut).toBe(1);
  });

  it('times out on the caller side, and the handler signal tells the server the caller left', async () => {
    let handlerSignal: AbortSignal | undefined;
    behaviour = (request) => {
      handlerSignal = request.signal;
      return new Promise(() => undefined);
    };
    await expect(
      federationRequest(caller, server.peerId, { method: 'GET', path: '/x', timeoutMs: 1000 }),
    ).rejects.toBeInstanceOf(FederationTimeoutError);
    await waitFor(() => handlerSignal?.aborted === true, 'the handler signal to abort');
    await waitFor(() => federation!.inFlight === 0, 'the request to be let go');
  });

  it('aborts on the caller signal', async () => {
    behaviour = () => new Promise(() => undefined);
    const controller = new AbortController();
    const pending = federationRequest(caller, server.peerId, { method: 'GET', path: '/x', signal: controller.signal });
    await waitFor(() => calls.length === 1, 'the request in the handler');
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(FederationAbortedError);
    await waitFor(() => federationStreams(caller, server.peerId) === 0, 'the caller stream to be gone');
  });

  it('refuses an answer larger than maxResponseBytes', async () => {
    behaviour = () => ({ status: 200, body: { filler: 'x'.repeat(64 * 1024) } });
    await expect(
      federationRequest(caller, server.peerId, { method: 'GET', path: '/x', maxResponseBytes: 1024 }),
    ).rejects.toBeInstanceOf(FederationResponseTooLargeError);
    const fine = await federationRequest(caller, server.peerId, { method: 'GET', path: '/x' });
    expect(fine.status).toBe(200);
  });

  it('throws FederationBadResponseError for an answer that is not HTTP/1.1 JSON', async () => {
    await federation!.stop();
    await server.handle(FEDERATION_PROTOCOL, (stream) => {
      void (async () => {
        await byteStream(stream).write(new TextEncoder().encode('SPDY/9 200\r\n\r\n'));
        await stream.close();
      })();
    });
    try {
      await expect(federationRequest(caller, server.peerId, { method: 'GET', path: '/x' })).rejects.toBeInstanceOf(
        FederationBadResponseError,
      );
    } finally {
      await server.unhandle(FEDERATION_PROTOCOL);
    }
  });

  it('refuses to send a method or path that cannot go on the wire', async () => {
    for (const init of [
      { method: 'get', path: '/x' },
      { method: 'GET', path: 'x' },
      { method: 'GET', path: '/x?a=1' },
      { method: 'GET', path: '/a b' },
    ]) {
      await expect(federationRequest(caller, server.peerId, init)).rejects.toBeInstanceOf(
        InvalidFederationRequestError,
      );
    }
    expect(calls).toEqual([]);
  });

  it('answers 504 when authorize hangs past the request deadline, and never reads the body', async () => {
    await serve({ requestTimeout: 300, authorize: () => new Promise<boolean>(() => undefined) });
    const got = await rawExchange(caller, server.peerId, 'PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n');
    expect(got.status).toBe(504);
    expect(calls).toEqual([]);
  });

  it('throws FederationUnreachableError for a peer that is down or does not speak the protocol', async () => {
    await expect(federationRequest(caller, stranger.peerId, { method: 'GET', path: '/x' })).rejects.toBeInstanceOf(
      FederationUnreachableError,
    );
    const gone = await startHost();
    const addr = gone.getMultiaddrs()[0]!;
    await gone.stop();
    await caller.peerStore.merge(gone.peerId, { multiaddrs: [addr] });
    await expect(federationRequest(caller, gone.peerId, { method: 'GET', path: '/x' })).rejects.toBeInstanceOf(
      FederationUnreachableError,
    );
  });

  it('leaves no stream behind after 100 sequential requests on one connection', async () => {
    // Earlier tests' raw streams may still be closing: the baseline is none on either end.
    await waitFor(
      () => federationStreams(caller, server.peerId) === 0 && federationStreams(server, caller.peerId) === 0,
      'no federation stream before the run',
    );
    const connections = caller.getConnections(server.peerId).length;
    const others = (): number =>
      server
        .getConnections(caller.peerId)
        .flatMap((c) => c.streams)
        .filter((s) => s.protocol !== FEDERATION_PROTOCOL).length;
    const baseline = others();
    for (let i = 0; i < 100; i++) {
      const got = await federationRequest(caller, server.peerId, { method: 'PUT', path: `/t/${i}`, body: { i } });
      expect(got.status).toBe(200);
    }
    await waitFor(
      () => federationStreams(caller, server.peerId) === 0 && federationStreams(server, caller.peerId) === 0,
      'every federation stream to close on both ends',
    );
    expect(caller.getConnections(server.peerId)).toHaveLength(connections);
    expect(others()).toBeLessThanOrEqual(baseline);
    expect(federation!.counts.handled).toBe(100);
  });
});
