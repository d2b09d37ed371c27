import { Inject, Injectable } from '@nestjs/common';
import { crossSigningRefusal, type CrossSigningBody } from '@polyhome/sync';
import type { MatrixSession } from '../auth/session.js';
import { UiaService } from '../auth/uia.service.js';
import { MatrixError } from '../common/errors.js';
import { bodyOf, isRecord, optionalRecord, signatureMap, stringMap, type JsonRecord } from '../common/json.js';
import { deviceKeysView, hasKeys } from '../devices/device-body.js';
import {
  MATRIX_HOME_PORT,
  MATRIX_STORE,
  type MatrixHomePort,
  type MatrixDeviceKeyLimits,
  type MatrixKeyUpload,
  type MatrixLocalChange,
  type MatrixStore,
  type MatrixStoredKey,
} from '../port.js';
import { ChangeFeedService } from '../sync/change-feed.service.js';
import { parseSyncToken } from '../sync/sync-token.js';

/** One-time keys accepted per upload; more is refused, as the sync caps refuse oversized bodies. */
const MAX_KEYS_PER_UPLOAD = 200;

/**
 * Keys a device may hold on this home: one-time keys of all algorithms together (clients keep about 50 on the
 * server, matrix-js-sdk and the Rust crypto half of what their account can hold), and algorithms with a fallback
 * key (Matrix has one, `signed_curve25519`). An upload that would go beyond is refused whole (docs/decisions.md).
 */
export const DEVICE_KEY_LIMITS: MatrixDeviceKeyLimits = { oneTime: 500, fallbackAlgorithms: 8 };

const CROSS_SIGNING_FIELDS = [
  ['master_key', 'master'],
  ['self_signing_key', 'self_signing'],
  ['user_signing_key', 'user_signing'],
] as const;

/** End-to-end encryption keys: identity keys and cross-signing keys replicated, one-time keys local. */
@Injectable()
export class KeysService {
  constructor(
    @Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort,
    @Inject(MATRIX_STORE) private readonly store: MatrixStore,
    private readonly uia: UiaService,
    private readonly feed: ChangeFeedService,
  ) {}

  /** POST /keys/upload: device keys into the device's `device.put`, one-time and fallback keys stored here. */
  async upload(session: MatrixSession, input: unknown): Promise<{ one_time_key_counts: Record<string, number> }> {
    const body = bodyOf(input);
    const deviceKeys = optionalRecord(body, 'device_keys');
    const oneTime = keyList(optionalRecord(body, 'one_time_keys'), 'one_time_keys');
    const fallback = keyList(optionalRecord(body, 'fallback_keys'), 'fallback_keys');
    let deviceChange: MatrixLocalChange | undefined;
    if (deviceKeys !== undefined) {
      if (deviceKeys['user_id'] !== session.userId || deviceKeys['device_id'] !== session.deviceId) {
        throw new MatrixError('M_INVALID_PARAM', 'device_keys must be of this user and this device.');
      }
      const algorithms = deviceKeys['algorithms'];
      if (!Array.isArray(algorithms) || !algorithms.every((a) => typeof a === 'string')) {
        throw new MatrixError('M_BAD_JSON', 'device_keys.algorithms must be an array of strings.');
      }
      const keys = stringMap(deviceKeys['keys'], 'device_keys.keys');
      const signatures = signatureMap(deviceKeys['signatures'] ?? {}, 'device_keys.signatures');
      const state = await this.port.state(session.serverName);
      const current = state.devices[session.deviceId];
      if (current === undefined) throw new MatrixError('M_UNKNOWN_TOKEN', 'This device was deleted.');
      const next = { ...current, algorithms, keys, signatures };
      if (JSON.stringify(next) !== JSON.stringify(current))
        deviceChange = { op: 'device.put', key: session.deviceId, body: next };
    }
    // The limits are checked before anything of the upload is applied: a refused upload changes nothing.
    const stored = await this.store.uploadKeys(
      session.serverName,
      session.deviceId,
      { oneTime, fallback },
      DEVICE_KEY_LIMITS,
    );
    if (!stored.stored) throw keyLimitError(stored);
    if (deviceChange !== undefined) await this.port.applyLocal(session.serverName, [deviceChange]);
    if (oneTime.length > 0 || fallback.length > 0)
      await this.feed.record(session.serverName, [`keys:${session.deviceId}`]);
    return { one_time_key_counts: await this.store.countOneTimeKeys(session.serverName, session.deviceId) };
  }

  /** POST /keys/query: this account's devices and cross-signing keys from the replicated state; others: none. */
  async query(session: MatrixSession, input: unknown): Promise<JsonRecord> {
    const body = bodyOf(input);
    const requested = optionalRecord(body, 'device_keys') ?? {};
    const out: JsonRecord = {
      device_keys: {},
      master_keys: {},
      self_signing_keys: {},
      user_signing_keys: {},
      failures: {},
    };
    const wanted = requested[session.userId];
    if (wanted === undefined) return out;
    if (!Array.isArray(wanted)) throw new MatrixError('M_BAD_JSON', 'device_keys values must be arrays.');
    const state = await this.port.state(session.serverName);
    const devices: JsonRecord = {};
    for (const [id, device] of Object.entries(state.devices)) {
      if (hasKeys(device) && (wanted.length === 0 || wanted.includes(id))) devices[id] = deviceKeysView(device);
    }
    (out['device_keys'] as JsonRecord)[session.userId] = devices;
    const cs = await this.boundCrossSigning(session, state.crossSigning);
    if (cs['master'] !== undefined) (out['master_keys'] as JsonRecord)[session.userId] = cs['master'];
    if (cs['self_signing'] !== undefined) (out['self_signing_keys'] as JsonRecord)[session.userId] = cs['self_signing'];
    if (cs['user_signing'] !== undefined) (out['user_signing_keys'] as JsonRecord)[session.userId] = cs['user_signing'];
    return out;
  }

  // The cross-signing keys the account document binds (all of them when it names no master key): keys held from
  // before the document named another master key are not served, so clients never trust what it did not sign.
  private async boundCrossSigning(
    session: MatrixSession,
    keys: Record<string, JsonRecord>,
  ): Promise<Record<string, JsonRecord>> {
    const master = await this.port.crossSigningMaster?.(session.serverName);
    if (master === undefined) return keys;
    const out: Record<string, JsonRecord> = {};
    for (const [usage, body] of Object.entries(keys)) {
      if (crossSigningRefusal(usage, body as unknown as CrossSigningBody, session.userId, master) === undefined)
        out[usage] = body;
    }
    return out;
  }

  /** POST /keys/claim: one-time (else fallback) keys of this account's devices uploaded to this home. */
  async claim(session: MatrixSession, input: unknown): Promise<JsonRecord> {
    const body = bodyOf(input);
    const requested = optionalRecord(body, 'one_time_keys') ?? {};
    const claimed: Record<string, Record<string, Record<string, unknown>>> = {};
    const wanted = requested[session.userId];
    if (wanted !== undefined) {
      const byDevice = stringMap(wanted, 'one_time_keys.<user>');
      const mine: Record<string, Record<string, unknown>> = {};
      for (const [deviceId, algorithm] of Object.entries(byDevice)) {
        const key = await this.store.claimKey(session.serverName, deviceId, algorithm);
        if (key !== null) mine[deviceId] = { [key.keyId]: key.value };
      }
      claimed[session.userId] = mine;
      await this.feed.record(
        session.serverName,
        Object.keys(mine).map((d) => `keys:${d}`),
      );
    }
    return { one_time_keys: claimed, failures: {} };
  }

  /** GET /keys/changes: this user when a device or cross-signing key changed between the two sync tokens. */
  async changes(session: MatrixSession, from: unknown, to: unknown): Promise<{ changed: string[]; left: string[] }> {
    const since = parseSyncToken(from, 'from');
    const until = parseSyncToken(to, 'to');
    const { keys, expired } = await this.store.changesSince(session.serverName, since);
    void until; // Positions above `to` are few and only make the answer conservative, which clients accept.
    // An expired `from` (the stream was pruned past it) cannot tell: the user counts as changed, as in Synapse.
    const changed = expired || keys.some((k) => k.startsWith('device:') || k.startsWith('cross_signing:'));
    return { changed: changed ? [session.userId] : [], left: [] };
  }

  /** POST /keys/device_signing/upload: cross-signing keys as `cross_signing.put` ops; UIA once a master key exists. */
  async uploadCrossSigning(session: MatrixSession, input: unknown): Promise<Record<string, never>> {
    const body = bodyOf(input);
    const state = await this.port.state(session.serverName);
    const changes: MatrixLocalChange[] = [];
    for (const [field, usage] of CROSS_SIGNING_FIELDS) {
      const key = optionalRecord(body, field);
      if (key === undefined) continue;
      if (key['user_id'] !== session.userId)
        throw new MatrixError('M_INVALID_PARAM', `${field}.user_id must be this user.`);
      const usages = key['usage'];
      if (!Array.isArray(usages) || !usages.includes(usage)) {
        throw new MatrixError('M_INVALID_PARAM', `${field}.usage must include ${usage}.`);
      }
      const keys = stringMap(key['keys'], `${field}.keys`);
      if (Object.keys(keys).length !== 1)
        throw new MatrixError('M_INVALID_PARAM', `${field} must hold exactly one key.`);
      const next: JsonRecord = { user_id: session.userId, usage: usages, keys };
      if (key['signatures'] !== undefined) next['signatures'] = signatureMap(key['signatures'], `${field}.signatures`);
      changes.push({ op: 'cross_signing.put', key: usage, body: next });
    }
    if (changes.length === 0) return {};
    // The spec lets a first upload go without UIA (a fresh account sets up cross-signing at once); replacing keys needs it.
    const replacing = changes.some(
      (c) =>
        state.crossSigning[c.key] !== undefined && JSON.stringify(state.crossSigning[c.key]) !== JSON.stringify(c.body),
    );
    if (replacing) await this.uia.require(session, body['auth']);
    // Only the root key can name the master key (in the account document); homes refuse keys it does not bind.
    const master = changes.find((c) => c.key === 'master');
    if (master !== undefined) {
      const [key] = Object.values(master.body['keys'] as Record<string, string>);
      await this.port.bindCrossSigningMaster?.(session.serverName, key!);
    }
    await this.port.applyLocal(session.serverName, changes);
    return {};
  }

  /** POST /keys/signatures/upload: signatures merged into this account's device or cross-signing keys. */
  async uploadSignatures(session: MatrixSession, input: unknown): Promise<{ failures: JsonRecord }> {
    const body = bodyOf(input);
    const failures: Record<string, JsonRecord> = {};
    const state = await this.port.state(session.serverName);
    const changes: MatrixLocalChange[] = [];
    for (const [userId, objects] of Object.entries(body)) {
      if (!isRecord(objects)) throw new MatrixError('M_BAD_JSON', 'Signed objects must be grouped by user.');
      for (const [keyId, signed] of Object.entries(objects)) {
        const fail = (errcode: string, error: string): void => {
          (failures[userId] ??= {})[keyId] = { errcode, error };
        };
        if (userId !== session.userId) {
          fail('M_FORBIDDEN', 'Signatures of other users are kept by their homes.');
          continue;
        }
        if (!isRecord(signed)) throw new MatrixError('M_BAD_JSON', 'A signed object must be an object.');
        const signatures = signatureMap(signed['signatures'] ?? {}, 'signatures');
        const device = state.devices[keyId];
        const crossSigning = Object.entries(state.crossSigning).find(([, k]) =>
          Object.values((k['keys'] ?? {}) as Record<string, string>).includes(keyId),
        );
        const [op, key, current]: [MatrixLocalChange['op'], string, JsonRecord | undefined] =
          device !== undefined
            ? ['device.put', keyId, device]
            : ['cross_signing.put', crossSigning?.[0] ?? '', crossSigning?.[1]];
        if (current === undefined) {
          fail('M_NOT_FOUND', 'Unknown key.');
          continue;
        }
        const merged = mergeSignatures(
          (current['signatures'] ?? {}) as Record<string, Record<string, string>>,
          signatures,
        );
        changes.push({ op, key, body: { ...current, signatures: merged } });
      }
    }
    if (changes.length > 0) await this.port.applyLocal(session.serverName, changes);
    return { failures };
  }
}

function mergeSignatures(
  a: Record<string, Record<string, string>>,
  b: Record<string, Record<string, string>>,
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [server, keys] of [...Object.entries(a), ...Object.entries(b)]) out[server] = { ...out[server], ...keys };
  return out;
}

function keyLimitError(refused: Extract<MatrixKeyUpload, { stored: false }>): MatrixError {
  if (refused.kind === 'fallback') {
    return new MatrixError(
      'M_INVALID_PARAM',
      `A device keeps fallback keys of at most ${DEVICE_KEY_LIMITS.fallbackAlgorithms} algorithms here; this one ` +
        `has ${refused.held} and the upload adds ${refused.adding}. Nothing was stored: upload fallback keys of fewer algorithms.`,
    );
  }
  return new MatrixError(
    'M_INVALID_PARAM',
    `A device keeps at most ${DEVICE_KEY_LIMITS.oneTime} one-time keys here; this one holds ${refused.held} and the ` +
      `upload adds ${refused.adding}. Nothing was stored: upload at most ${Math.max(0, DEVICE_KEY_LIMITS.oneTime - refused.held)} ` +
      'new keys (one_time_key_counts and /sync say how many are held).',
  );
}

function keyList(keys: JsonRecord | undefined, field: string): MatrixStoredKey[] {
  if (keys === undefined) return [];
  const entries = Object.entries(keys);
  if (entries.length > MAX_KEYS_PER_UPLOAD)
    throw new MatrixError('M_BAD_JSON', `${field} has more than ${MAX_KEYS_PER_UPLOAD} keys.`);
  return entries.map(([keyId, value]) => {
    const algorithm = keyId.split(':')[0] ?? '';
    if (algorithm === '' || algorithm.length > 128 || !keyId.includes(':') || keyId.length > 255) {
      throw new MatrixError('M_BAD_JSON', `${field} key ids are <algorithm>:<id> (at most 128 and 255 characters).`);
    }
    if (typeof value !== 'string' && !isRecord(value))
      throw new MatrixError('M_BAD_JSON', `${field} values are strings or objects.`);
    return { keyId, algorithm, value };
  });
}
