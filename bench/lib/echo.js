// A raw libp2p echo on a new stream (the floor for one stream per request): the server end reads until the
// caller closes its side, writes the bytes back and closes.
import { byteStream } from '@libp2p/utils';

export const ECHO_PROTOCOL = '/polyhome-bench/echo/1.0.0';

/** Makes `host` answer ECHO_PROTOCOL. */
export async function handleEcho(host) {
  await host.handle(ECHO_PROTOCOL, (stream) => {
    void (async () => {
      const bytes = byteStream(stream);
      const chunks = [];
      for (let data = await bytes.read(); data !== null; data = await bytes.read()) chunks.push(data.subarray());
      for (const chunk of chunks) await bytes.write(chunk);
      await stream.close();
    })().catch((err) => stream.abort(err));
  });
}

/** One echo of `payload` from `caller` to `peerId` on a new stream. */
export async function echoOnce(caller, peerId, payload) {
  const stream = await caller.dialProtocol(peerId, ECHO_PROTOCOL);
  const bytes = byteStream(stream);
  await bytes.write(payload);
  await stream.close();
  await bytes.read({ bytes: payload.byteLength });
}
