// /polyhome/enroll/1.0.0 between two real libp2p nodes on 127.0.0.1: the lib's client against the lib's
// handler, with a small redeem callback standing in for the server's enrollment service.
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { SecretKey } from '@polyhome/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENROLL_MAX_FRAME_BYTES, ENROLL_PROTOCOL } from './constants.js';
import { EnrollmentProtocolError, EnrollmentRefusedError } from './errors.js';
import { createPolyhomeHost, type PolyhomeHost } from './host.js';
import { createEnrollmentServer, enrollOverLibp2p, type EnrollmentServer, type RedeemEnrollment } from './index.js';
import { rawEnrollExchange, recordingLogger } from './testing/index.js';

const loopback = (host: PolyhomeHost): string =>
  host
    .getMultiaddrs()
    .find((a) => a.toString().startsWith('/ip4/127.0.0.1/'))!
    .toString();

async function startHost(): Promise<PolyhomeHost> {
  return createPolyhomeHost({
    nodeKey: SecretKey.generate(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
  });
}

describe('/polyhome/enroll/1.0.0', () => {
  let server: PolyhomeHost;
  let client: PolyhomeHost;
  let enrollment: EnrollmentServer;
  const logger = recordingLogger();
  const seen: Array<{ request: Record<string, unknown>; from: string }> = [];
  // Stands in for the server's domain: a token decides, and the word "explode" is a failing database.
  const redeem: RedeemEnrollment = async (request, from) => {
    seen.push({ request, from });
    if (request['token'] === 'explode') throw new Error('database down');
    if (request['token'] !== 'good') return { errcode: 'M_FORBIDDEN', error: 'Unknown enrollment token.' };
    return { user_id: '@a:b', peer_id: server.peerId.toString(), addrs: [loopback(server)] };
  };

  beforeAll(async () => {
    [server, client] = await Promise.all([startHost(), startHost()]);
    enrollment = createEnrollmentServer(server, { redeem, logger });
    await enrollment.start();
  });
  afterAll(async () => {
    await enrollment?.stop();
    await Promise.all([server?.stop(), client?.stop()]);
  });

  it('hands the request and the asking PeerId to redeem, and returns its answer', async () => {
    const answer = await enrollOverLibp2p(client, loopback(server), { document: { x: 1 }, token: 'good' });
    expect(answer).toEqual({ user_id: '@a:b', peer_id: server.peerId.toString(), addrs: [loopback(server)] });
    expect(seen.at(-1)).toEqual({ request: { document: { x: 1 }, token: 'good' }, from: client.peerId.toString() });
  });

  it('a refusal from redeem reaches the client as EnrollmentRefusedError with its errcode', async () => {
    const refused = await enrollOverLibp2p(client, loopback(server), { document: {}, token: 'bad' }).catch(
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(EnrollmentRefusedError);
    expect(refused).toMatchObject({ errcode: 'M_FORBIDDEN', error: 'Unknown enrollment token.' });
  });

  it('a redeem that throws is answered M_UNKNOWN without its message, and logged as an error', async () => {
    const failed = await enrollOverLibp2p(client, loopback(server), { document: {}, token: 'explode' }).catch(
      (err: unknown) => err,
    );
    expect(failed).toMatchObject({ errcode: 'M_UNKNOWN', error: 'Internal error.' });
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        level: 'error',
        msg: 'enrollment failed',
        fields: expect.objectContaining({
          err: 'database down',
          peer: client.peerId.toString(),
          protocol: ENROLL_PROTOCOL,
        }),
      }),
    );
  });

  it('refuses frames that are not JSON objects and frames over the cap before redeem, and keeps serving', async () => {
    const before = seen.length;
    const ask = async (bytes: Uint8Array) => rawEnrollExchange(client, loopback(server), bytes);
    expect((await ask(new TextEncoder().encode('not json'))).errcode).toBe('M_NOT_JSON');
    expect((await ask(new TextEncoder().encode('[1]'))).errcode).toBe('M_NOT_JSON');
    expect((await ask(new Uint8Array(ENROLL_MAX_FRAME_BYTES + 1).fill(32))).errcode).toBe('M_TOO_LARGE');
    expect(seen.length).toBe(before);
    const ok = await enrollOverLibp2p(client, loopback(server), { document: {}, token: 'good' });
    expect(ok.peer_id).toBe(server.peerId.toString());
  });

  it('an answer that is neither an enrollment nor an error is EnrollmentProtocolError', async () => {
    const odd = await startHost();
    try {
      await odd.handle(ENROLL_PROTOCOL, (stream: Stream) => {
        const lp = lpStream(stream);
        void (async () => {
          await lp.read();
          await lp.write(new TextEncoder().encode('{"user_id":"@a:b"}'));
          await stream.close();
        })().catch((err: unknown) => stream.abort(err as Error));
      });
      const bad = await enrollOverLibp2p(client, loopback(odd), { document: {} }).catch((err: unknown) => err);
      expect(bad).toBeInstanceOf(EnrollmentProtocolError);
    } finally {
      await odd.stop();
    }
  });
});
