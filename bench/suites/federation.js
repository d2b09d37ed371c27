// Federation: the round trip of one /polyhome/federation/1.0.0 request (a PUT of a small JSON body echoed back:
// new stream, HTTP/1.1 framing, the server's checks, JSON both ways) next to, in the same run and on the same
// connection, a raw libp2p echo of the same bytes on a new stream (the floor for one stream per request) and
// libp2p ping (one stream kept open). Real TCP on 127.0.0.1, built libraries.
import { SecretKey } from '@polyhome/identity';
import { createFederationServer, createPolyhomeHost, federationRequest } from '@polyhome/p2p';
import { echoOnce, handleEcho } from '../lib/echo.js';
import { percentile, timed as timedRounds } from '../lib/util.js';

export const description = 'federation-echo request p50/p99 vs raw libp2p stream echo and ping, same connection';

const ROUNDS = 1000;
const WARM_UP = 100;

async function host() {
  return createPolyhomeHost({
    nodeKey: SecretKey.generate(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
  });
}

// Times `fn` ROUNDS times after WARM_UP untimed calls; returns the sorted durations in ms.
const timed = (fn) => timedRounds(ROUNDS, fn, WARM_UP);

export async function run(ctx) {
  const [server, caller] = await Promise.all([host(), host()]);
  const federation = createFederationServer(server, {
    handler: (request) => ({ status: 200, body: request.body ?? {} }),
  });
  await federation.start();
  // The raw floor: read the request until the caller closes its end, write it back, close.
  await handleEcho(server);
  const body = { origin: 'a.example', pdus: [{ content: { body: 'x'.repeat(900) } }], edus: [] };
  const payload = new TextEncoder().encode(JSON.stringify(body));
  try {
    await caller.dial(server.getMultiaddrs()[0]);

    ctx.progress(`federation PUT echo x${ROUNDS}`);
    const fed = await timed(async (i) => {
      const got = await federationRequest(caller, server.peerId, {
        method: 'PUT',
        path: `/_matrix/federation/v1/send/${i}`,
        body,
      });
      if (got.status !== 200) throw new Error(`federation echo answered ${got.status}`);
    });

    ctx.progress(`raw stream echo x${ROUNDS}`);
    const raw = await timed(() => echoOnce(caller, server.peerId, payload));

    ctx.progress(`ping x${ROUNDS}`);
    const pings = await timed(() => caller.services.ping.ping(server.peerId));

    const ref = `raw echo p50 ${percentile(raw, 50).toFixed(2)} ms, ping p50 ${percentile(pings, 50).toFixed(2)} ms`;
    return [
      { figure: 'federation_echo.p50_ms', value: percentile(fed, 50), unit: 'ms', reference: ref },
      {
        figure: 'federation_echo.p99_ms',
        value: percentile(fed, 99),
        unit: 'ms',
        reference: `raw echo p99 ${percentile(raw, 99).toFixed(2)} ms`,
      },
      {
        figure: 'raw_stream_echo.p50_ms',
        value: percentile(raw, 50),
        unit: 'ms',
        reference: `physical reference: new stream, ${payload.byteLength} bytes each way`,
      },
      { figure: 'raw_stream_echo.p99_ms', value: percentile(raw, 99), unit: 'ms', reference: 'physical reference' },
      { figure: 'ping.p50_ms', value: percentile(pings, 50), unit: 'ms', reference: 'libp2p ping, same connection' },
      { figure: 'ping.p99_ms', value: percentile(pings, 99), unit: 'ms', reference: 'physical reference' },
    ];
  } finally {
    await federation.stop();
    await Promise.all([caller.stop(), server.stop()]);
  }
}
