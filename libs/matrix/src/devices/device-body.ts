import type { JsonRecord } from '../common/json.js';

/** The `device.put` body of a device that has just logged in and uploaded no keys yet. */
export function newDeviceBody(userId: string, deviceId: string, home: string, displayName?: string): JsonRecord {
  return {
    user_id: userId,
    device_id: deviceId,
    algorithms: [],
    keys: {},
    signatures: {},
    ...(displayName !== undefined ? { display_name: displayName } : {}),
    home,
  };
}

/** Whether a device has uploaded its identity keys (one without keys is not shown to /keys/query). */
export function hasKeys(body: JsonRecord): boolean {
  const keys = body['keys'];
  return typeof keys === 'object' && keys !== null && Object.keys(keys).length > 0;
}

/** A device as `/keys/query` shows it: the DeviceKeys object, with the display name under `unsigned`. */
export function deviceKeysView(body: JsonRecord): JsonRecord {
  const { display_name, home: _home, ...keys } = body;
  return { ...keys, unsigned: typeof display_name === 'string' ? { device_display_name: display_name } : {} };
}

/** A device as `/devices` shows it. */
export function deviceView(deviceId: string, body: JsonRecord): JsonRecord {
  const name = body['display_name'];
  return { device_id: deviceId, ...(typeof name === 'string' ? { display_name: name } : {}) };
}
