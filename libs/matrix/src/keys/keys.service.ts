import { Inject, Injectable } from '@nestjs/common';
import { signedBytes } from '@polyhome/identity';
import {
  crossSigningRefusal,
  deviceSignatureRefusal,
  deviceSignedBytes,
  hasValidSignature,
  type CrossSigningBody,
  type DeviceBody,
} from '@polyhome/sync';
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
import { otherUsersChanged } from '../sync/device-lists.js';
import { parseSyncToken } from '../sync/sync-token.js';

/**
 * Users one /keys/query or /keys/claim may name, and devices over all of them. A client asks for every member of
 * its encrypted rooms at once (each user is an account, asked at its own homes, 8 at a time, within `timeout`).
 */
const MAX_KEY_USERS = 1_000;
const MAX_KEY_DEVICES = 10_000;
/** How long other homes are waited for when the request names no `timeout`, and the most it may name, ms. */
const DEFAULT_KEYS_TIMEOUT_MS = 10_000;
const MAX_KEYS_TIMEOUT_MS = 60_000;

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
    const state = await this.port.state(session.serverName);
    const current = state.devices[session.deviceId];
    if (current === undefined) throw new MatrixError('M_UNKNOWN_TOKEN', 'This device was deleted.');
    let device: JsonRecord = current;
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
      device = { ...current, algorithms, keys, signatures };
      checkSelfSigned(device, deviceKeys);
      if (JSON.stringify(device) !== JSON.stringify(current))
        deviceChange = { op: 'device.put', key: session.deviceId, body: device };
    }
    checkSignedKeys(session, device, oneTime, 'one_time_keys');
    checkSignedKeys(session, device, fallback, 'fallback_keys');
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

  /**
   * POST /keys/query: this account's devices and cross-signing keys from the replicated state; users of other
   * accounts asked of a home of theirs over federation (the port's `remoteKeys`), `failures` naming the servers
   * that could not be asked in time.
   */
  async query(session: MatrixSession, input: unknown): Promise<JsonRecord> {
    const body = bodyOf(input);
    const requested = optionalRecord(body, 'device_keys') ?? {};
    const timeoutMs = timeoutOf(body);
    const out: JsonRecord = {
      device_keys: {},
      master_keys: {},
      self_signing_keys: {},
      user_signing_keys: {},
      failures: {},
    };
    const others: Record<string, string[]> = {};
    checkKeyRequestSize(requested, 'device_keys');
    for (const [userId, wanted] of Object.entries(requested)) {
      if (!Array.isArray(wanted) || !wanted.every((d) => typeof d === 'string'))
        throw new MatrixError('M_BAD_JSON', 'device_keys values must be arrays of device ids.');
      if (userId !== session.userId) others[checkedUserId(userId)] = wanted as string[];
    }
    const wanted = requested[session.userId] as string[] | undefined;
    if (wanted !== undefined) await this.queryOwn(session, wanted, out);
    if (Object.keys(others).length > 0 && this.port.remoteKeys !== undefined) {
      const remote = await this.port.remoteKeys.query(session.serverName, others, timeoutMs);
      for (const field of ['device_keys', 'master_keys', 'self_signing_keys', 'failures'] as const)
        Object.assign(out[field] as JsonRecord, remote[field]);
    }
    return out;
  }

  private async queryOwn(session: MatrixSession, wanted: string[], out: JsonRecord): Promise<void> {
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

  /**
   * POST /keys/claim: one-time (else fallback) keys. Those of this account's devices uploaded to this home are
   * claimed here; those of its devices on its other homes and of other users' devices are asked of the homes
   * holding them over federation (the port's `remoteKeys`), `failures` naming the servers not reached in time.
   */
  async claim(session: MatrixSession, input: unknown): Promise<JsonRecord> {
    const body = bodyOf(input);
    const requested = optionalRecord(body, 'one_time_keys') ?? {};
    const timeoutMs = timeoutOf(body);
    checkKeyRequestSize(requested, 'one_time_keys');
    const claimed: Record<string, Record<string, unknown>> = {};
    const remote: Record<string, Record<string, string>> = {};
    for (const [userId, wanted] of Object.entries(requested)) {
      const byDevice = stringMap(wanted, 'one_time_keys.<user>');
      if (userId !== session.userId) remote[checkedUserId(userId)] = byDevice;
    }
    const wanted = requested[session.userId];
    if (wanted !== undefined) {
      const byDevice = stringMap(wanted, 'one_time_keys.<user>');
      const state = await this.port.state(session.serverName);
      const mine: Record<string, unknown> = {};
      const elsewhere: Record<string, string> = {};
      for (const [deviceId, algorithm] of Object.entries(byDevice)) {
        const home = state.devices[deviceId]?.['home'];
        if (typeof home === 'string' && home !== this.port.homeId) {
          elsewhere[deviceId] = algorithm;
          continue;
        }
        const key = await this.store.claimKey(session.serverName, deviceId, algorithm);
        if (key !== null) mine[deviceId] = { [key.keyId]: key.value };
      }
      claimed[session.userId] = mine;
      if (Object.keys(elsewhere).length > 0) remote[session.userId] = elsewhere;
      await this.feed.record(
        session.serverName,
        Object.keys(mine).map((d) => `keys:${d}`),
      );
    }
    let failures: JsonRecord = {};
    if (Object.keys(remote).length > 0 && this.port.remoteKeys !== undefined) {
      const answer = await this.port.remoteKeys.claim(session.serverName, remote, timeoutMs);
      for (const [userId, keys] of Object.entries(answer.one_time_keys))
        claimed[userId] = { ...claimed[userId], ...keys };
      failures = answer.failures;
    }
    return { one_time_keys: claimed, failures };
  }

  /**
   * GET /keys/changes: this user when a device or cross-signing key changed between the two sync tokens, and the
   * users of other accounts a home of theirs said changed (m.device_list_update).
   */
  async changes(session: MatrixSession, from: unknown, to: unknown): Promise<{ changed: string[]; left: string[] }> {
    const since = parseSyncToken(from, 'from');
    const until = parseSyncToken(to, 'to');
    const { keys, expired } = await this.store.changesSince(session.serverName, since);
    void until; // Positions above `to` are few and only make the answer conservative, which clients accept.
    // An expired `from` (the stream was pruned past it) cannot tell: the user counts as changed, as in Synapse.
    const changed = expired || keys.some((k) => k.startsWith('device:') || k.startsWith('cross_signing:'));
    return { changed: [...(changed ? [session.userId] : []), ...otherUsersChanged(keys)], left: [] };
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
    await this.checkCrossSigningUpload(session, state.crossSigning, changes);
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

  // Spec POST /keys/device_signing/upload: the self-signing and user-signing keys must be signed by the master key
  // (the one uploaded with them, else the one the account document names, else the one held); 400
  // M_INVALID_SIGNATURE otherwise, M_MISSING_PARAM when there is no master key at all. Checked before anything is
  // bound or stored, with the rule op validation applies (crossSigningRefusal), so a refused upload changes nothing.
  private async checkCrossSigningUpload(
    session: MatrixSession,
    held: Record<string, JsonRecord>,
    changes: MatrixLocalChange[],
  ): Promise<void> {
    const uploaded = changes.find((c) => c.key === 'master');
    let master: string | undefined;
    if (uploaded !== undefined) {
      const [[keyId, key]] = Object.entries(uploaded.body['keys'] as Record<string, string>) as [[string, string]];
      if (keyId !== `ed25519:${key}`) {
        throw new MatrixError('M_INVALID_PARAM', 'master_key.keys must be { "ed25519:<public key>": "<public key>" }.');
      }
      master = key;
    } else {
      master = await this.port.crossSigningMaster?.(session.serverName);
      master ??= Object.values((held['master']?.['keys'] ?? {}) as Record<string, string>)[0];
    }
    for (const change of changes) {
      if (change.key === 'master') continue;
      if (master === undefined) {
        throw new MatrixError(
          'M_MISSING_PARAM',
          `No master key is available to check the ${change.key} key: upload master_key with it.`,
        );
      }
      const body = change.body as unknown as CrossSigningBody;
      if (crossSigningRefusal(change.key, body, session.userId, master) !== undefined) {
        throw new MatrixError(
          'M_INVALID_SIGNATURE',
          `The ${change.key} key carries no valid signature signatures[${session.userId}][ed25519:${master}] by the ` +
            'master key. Nothing was stored: sign it with the master key.',
        );
      }
    }
  }

  /**
   * POST /keys/signatures/upload: new signatures on this account's keys, each verified with the key it names
   * (spec "Cross-signing"): on a device, by the self-signing key; on the master key, by one of the user's devices;
   * on the self-signing and user-signing keys, by the master key. A signed object whose new signatures do not all
   * verify, that is not the key held here, or names an unknown key, is reported in `failures` and changes nothing.
   */
  async uploadSignatures(session: MatrixSession, input: unknown): Promise<{ failures: JsonRecord }> {
    const body = bodyOf(input);
    const failures: Record<string, JsonRecord> = {};
    const state = await this.port.state(session.serverName);
    const crossSigning = await this.boundCrossSigning(session, state.crossSigning);
    const changes: MatrixLocalChange[] = [];
    for (const [userId, objects] of Object.entries(body)) {
      if (!isRecord(objects)) throw new MatrixError('M_BAD_JSON', 'Signed objects must be grouped by user.');
      for (const [keyId, signed] of Object.entries(objects)) {
        if (!isRecord(signed)) throw new MatrixError('M_BAD_JSON', 'A signed object must be an object.');
        const signatures = signatureMap(signed['signatures'] ?? {}, 'signatures');
        const outcome =
          userId === session.userId
            ? this.signatureChange(session, state.devices, crossSigning, keyId, signed, signatures)
            : {
                errcode: 'M_FORBIDDEN',
                error: `Signatures on keys of ${userId} are kept by that user's homes, not this one.`,
              };
        if (outcome === undefined) continue;
        if ('op' in outcome) changes.push(outcome);
        else (failures[userId] ??= {})[keyId] = outcome;
      }
    }
    if (changes.length > 0) await this.port.applyLocal(session.serverName, changes);
    return { failures };
  }

  // The change one signed object makes (the held key with its new, verified signatures merged), undefined when it
  // adds no signature, or the failure to report for it.
  private signatureChange(
    session: MatrixSession,
    devices: Record<string, JsonRecord>,
    crossSigning: Record<string, JsonRecord>,
    keyId: string,
    signed: JsonRecord,
    signatures: Record<string, Record<string, string>>,
  ): MatrixLocalChange | { errcode: string; error: string } | undefined {
    const fail = (errcode: string, error: string) => ({ errcode, error });
    const publicKey = (key: JsonRecord | undefined): string | undefined =>
      Object.values((key?.['keys'] ?? {}) as Record<string, string>)[0];
    const device = devices[keyId];
    const usage = Object.keys(crossSigning).find((u) => publicKey(crossSigning[u]) === keyId);
    let target: { op: MatrixLocalChange['op']; key: string; current: JsonRecord; bytes: Uint8Array };
    // The keys that may sign the object, by key ID (spec "Cross-signing").
    const signers: Record<string, string> = {};
    const addSigner = (key: JsonRecord | undefined) => {
      const pub = publicKey(key);
      if (pub !== undefined) signers[`ed25519:${pub}`] = pub;
    };
    try {
      if (device !== undefined && hasKeys(device)) {
        target = { op: 'device.put', key: keyId, current: device, bytes: deviceSignedBytes(device) };
        addSigner(crossSigning['self_signing']);
        const own = (device['keys'] as Record<string, string>)[`ed25519:${keyId}`];
        if (own !== undefined) signers[`ed25519:${keyId}`] = own;
      } else if (usage !== undefined) {
        const current = crossSigning[usage]!;
        target = { op: 'cross_signing.put', key: usage, current, bytes: signedBytes(current) };
        addSigner(crossSigning['master']);
        if (usage === 'master') {
          for (const [id, other] of Object.entries(devices)) {
            const key = (other['keys'] as Record<string, string> | undefined)?.[`ed25519:${id}`];
            if (key !== undefined) signers[`ed25519:${id}`] = key;
          }
        }
      } else {
        return fail('M_NOT_FOUND', `${keyId} is neither a device with keys nor a cross-signing key of this account.`);
      }
    } catch (error) {
      return fail('M_INVALID_SIGNATURE', `The key held for ${keyId} cannot be signed: ${(error as Error).message}`);
    }
    let sameObject: boolean;
    try {
      const bytes = target.op === 'device.put' ? deviceSignedBytes(signed) : signedBytes(signed);
      sameObject = Buffer.from(bytes).equals(Buffer.from(target.bytes));
    } catch {
      sameObject = false;
    }
    if (!sameObject) {
      return fail(
        'M_INVALID_SIGNATURE',
        `The signed object is not the ${keyId} key held here (without signatures and unsigned): query it again and sign that.`,
      );
    }
    const held = (target.current['signatures'] ?? {}) as Record<string, Record<string, string>>;
    const added: Record<string, Record<string, string>> = {};
    for (const [signer, byKey] of Object.entries(signatures)) {
      for (const [signingKeyId, signature] of Object.entries(byKey)) {
        if (held[signer]?.[signingKeyId] === signature) continue;
        if (signer !== session.userId)
          return fail('M_INVALID_SIGNATURE', `Only signatures by ${session.userId} are taken here, not by ${signer}.`);
        const pub = signers[signingKeyId];
        if (pub === undefined) {
          return fail(
            'M_INVALID_SIGNATURE',
            `${signingKeyId} is not a key that may sign ${keyId} (spec "Cross-signing").`,
          );
        }
        const one = { signatures: { [signer]: { [signingKeyId]: signature } } };
        if (!hasValidSignature(one, target.bytes, signer, signingKeyId, pub)) {
          return fail(
            'M_INVALID_SIGNATURE',
            `The signature by ${signingKeyId} on ${keyId} does not verify. Nothing was stored.`,
          );
        }
        (added[signer] ??= {})[signingKeyId] = signature;
      }
    }
    if (Object.keys(added).length === 0) return undefined;
    return { op: target.op, key: target.key, body: { ...target.current, signatures: mergeSignatures(held, added) } };
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

// The spec's `timeout` of /keys/query and /keys/claim: how long other homes are waited for (ms).
function timeoutOf(body: JsonRecord): number {
  const value = body['timeout'];
  if (value === undefined) return DEFAULT_KEYS_TIMEOUT_MS;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new MatrixError('M_BAD_JSON', 'timeout must be a number of milliseconds.');
  return Math.max(1, Math.min(MAX_KEYS_TIMEOUT_MS, value));
}

// A key request names at most MAX_KEY_USERS users and MAX_KEY_DEVICES devices: larger ones are refused whole.
function checkKeyRequestSize(requested: JsonRecord, field: string): void {
  const users = Object.keys(requested).length;
  const devices = Object.values(requested).reduce<number>(
    (n, v) => n + (Array.isArray(v) ? v.length : isRecord(v) ? Object.keys(v).length : 0),
    0,
  );
  if (users > MAX_KEY_USERS || devices > MAX_KEY_DEVICES) {
    throw new MatrixError(
      'M_TOO_LARGE',
      `${field} names ${users} users and ${devices} devices; at most ${MAX_KEY_USERS} users and ${MAX_KEY_DEVICES} ` +
        'devices are taken per request: split it.',
      413,
    );
  }
}

// A user id (`@localpart:server`, at most 255 characters); 400 saying what is wrong otherwise. Whether its server
// is an account that can be asked is for the port to say (in `failures`).
function checkedUserId(userId: string): string {
  const colon = userId.indexOf(':');
  if (!userId.startsWith('@') || colon < 2 || colon === userId.length - 1 || userId.length > 255) {
    throw new MatrixError(
      'M_INVALID_PARAM',
      `${userId.slice(0, 100)} is not a user id (@localpart:server, at most 255 characters).`,
    );
  }
  return userId;
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

/** The spec's signed key algorithm: its keys are objects signed by the device's Ed25519 key (spec "Key algorithms"). */
const SIGNED_ALGORITHM = 'signed_curve25519';
/** Fields of an uploaded DeviceKeys object that are kept (and so may be covered by its self-signature). */
const DEVICE_KEY_FIELDS = ['user_id', 'device_id', 'algorithms', 'keys', 'signatures', 'unsigned'];

// Device keys are stored only when self-signed (spec "Device keys"): the same rule op validation applies to every
// replicated `device.put`, checked here first so the client gets a 400 and nothing is stored.
function checkSelfSigned(device: JsonRecord, uploaded: JsonRecord): void {
  const refusal = deviceSignatureRefusal(device as unknown as DeviceBody);
  if (refusal === undefined) return;
  const dropped = Object.keys(uploaded).filter((f) => !DEVICE_KEY_FIELDS.includes(f));
  const hint =
    dropped.length > 0
      ? ` This home keeps only ${DEVICE_KEY_FIELDS.join(', ')}; the signature must not cover ${dropped.join(', ')}.`
      : '';
  throw new MatrixError(
    'M_INVALID_PARAM',
    `Nothing was stored: ${refusal}. Sign the device keys (without signatures and unsigned) with the device's ` +
      `Ed25519 key.${hint}`,
  );
}

// A `{ key, signatures }` object with a valid signature by `keyId`; anything else (a string, floats that have no
// canonical JSON, a bad signature) is not.
function isSignedKey(value: unknown, userId: string, keyId: string, publicKey: string): boolean {
  if (!isRecord(value) || typeof value['key'] !== 'string') return false;
  let bytes: Uint8Array;
  try {
    bytes = signedBytes(value);
  } catch {
    return false;
  }
  return hasValidSignature(value, bytes, userId, keyId, publicKey);
}

// One-time and fallback keys of the signed algorithm must carry a valid signature by the device's Ed25519 key,
// the key `device` holds (uploaded in the same request or before): a client claiming one checks the same.
function checkSignedKeys(session: MatrixSession, device: JsonRecord, keys: MatrixStoredKey[], field: string): void {
  const keyId = `ed25519:${session.deviceId}`;
  for (const key of keys) {
    if (key.algorithm !== SIGNED_ALGORITHM) continue;
    const deviceKey = (device['keys'] as Record<string, string> | undefined)?.[keyId];
    if (deviceKey === undefined) {
      throw new MatrixError(
        'M_INVALID_PARAM',
        `${field}.${key.keyId} cannot be checked: this device has no Ed25519 key yet. Nothing was stored: upload ` +
          'device_keys first, or in the same request.',
      );
    }
    if (!isSignedKey(key.value, session.userId, keyId, deviceKey)) {
      throw new MatrixError(
        'M_INVALID_PARAM',
        `${field}.${key.keyId} is not a ${SIGNED_ALGORITHM} key ({ key, signatures }) with a valid signature ` +
          `signatures[${session.userId}][${keyId}] by this device's Ed25519 key. Nothing was stored.`,
      );
    }
  }
}
