// A Matrix client (matrix-js-sdk) run as its own process inside a namespace (test/netns/proxy.test.ts): it talks
// to `polyhome proxy` on that namespace's 127.0.0.1, which the test process cannot reach. It logs in with a
// password as the device the test names, uploads that device's keys (signed by the test, which can load the
// fixtures), reads its devices and key list, syncs until prepared, and prints one JSON line. Run with node's type
// stripping: `node test/netns/proxy-client.ts <base URL> <user ID> <password> <device ID> <device keys JSON>`.
import { ClientEvent, createClient, Method, SyncState } from 'matrix-js-sdk';

const [baseUrl = '', userId = '', password = '', deviceId = '', deviceKeys = '{}'] = process.argv.slice(2);
const login = await createClient({ baseUrl }).loginRequest({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user: userId },
  password,
  device_id: deviceId,
});
const client = createClient({ baseUrl, userId, accessToken: login.access_token, deviceId: login.device_id });
await client.http.authedRequest(Method.Post, '/keys/upload', undefined, {
  device_keys: JSON.parse(deviceKeys) as Record<string, unknown>,
});
const keys = await client.http.authedRequest<{ device_keys: Record<string, Record<string, unknown>> }>(
  Method.Post,
  '/keys/query',
  undefined,
  { device_keys: { [userId]: [] } },
);
const { devices } = await client.getDevices();
const prepared = new Promise<void>((resolve, reject) => {
  client.on(ClientEvent.Sync, (state: SyncState) => {
    if (state === SyncState.Prepared) resolve();
    if (state === SyncState.Error) reject(new Error('cannot sync through the proxy'));
  });
});
await client.startClient({ initialSyncLimit: 5 });
await prepared;
client.stopClient();
process.stdout.write(
  `RESULT ${JSON.stringify({
    user_id: login.user_id,
    device_id: login.device_id,
    devices: devices.map((d) => d.device_id),
    keyed: Object.keys(keys.device_keys[userId] ?? {}),
    synced: true,
  })}\n`,
);
process.exit(0);
