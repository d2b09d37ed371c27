// End-to-end encryption keys across homes and accounts, over federation (the spec's `user/keys/query`,
// `user/devices/{userId}` and `user/keys/claim`). Device keys and cross-signing keys are replicated account state,
// so every home of an account answers for them; one-time and fallback keys are held only by the home the device
// uploaded them to (the `home` of its `device.put`), so a claim goes to that home. See docs/decisions.md,
// "Keys across homes".
import { homeStatus, isServerName, parseUserId, type AccountDocument } from '@polyhome/identity';
import type { MatrixAccountState, MatrixRemoteKeyClaim, MatrixRemoteKeyQuery } from '@polyhome/matrix';
import type { FederationResponse } from '@polyhome/p2p';
import { crossSigningRefusal, type CrossSigningBody, type VersionVector } from '@polyhome/sync';
import type { HomeLogger } from '../ports.js';

/** Users one keys request may name (federation and client alike). */
export const MAX_KEY_USERS = 100;
/** Devices one keys request may name, over all its users. */
export const MAX_KEY_DEVICES = 1_000;
/** Servers (accounts) asked at once for one client request. */
const SERVERS_AT_ONCE = 8;
/** Device-to-home hints remembered from answers (the oldest is forgotten first). */
const HINTS_REMEMBERED = 10_000;
/** The polyhome field of a keys answer naming the home of devices whose keys another home holds. */
export const DEVICE_HOMES_FIELD = 'org.polyhome.device_homes';

type Json = Record<string, unknown>;

/** What the keys routes read of the accounts hosted here (the replica store is all of it). */
export interface KeyAccountStore {
  document(account: string): Promise<AccountDocument | undefined>;
  state(account: string): Promise<MatrixAccountState>;
  versionVector(account: string): Promise<VersionVector>;
}

/** Where one-time and fallback keys uploaded to this home are claimed (`SqlMatrixStore` of `@polyhome/storage`). */
export interface OneTimeKeyStore {
  claimKey(serverName: string, deviceId: string, algorithm: string): Promise<{ keyId: string; value: unknown } | null>;
}

/** What the keys half of federation is built from. */
export interface FederationKeysComponents {
  peerId: string;
  accounts: KeyAccountStore;
  /** Without it, this home holds no one-time keys (a claim of its devices gets none). */
  oneTimeKeys?: OneTimeKeyStore;
  /** Documents of other accounts (held, else resolved through the DHT). */
  documents: {
    document(serverName: string): Promise<AccountDocument | undefined>;
    resolve(serverName: string): Promise<AccountDocument | undefined>;
  };
  /** One federation request to a home as `origin`. */
  request(
    peer: string,
    origin: string,
    init: { method: string; path: string; body?: unknown; timeoutMs?: number },
  ): Promise<FederationResponse>;
  /** Told when keys of a hosted account's devices were claimed here (their one-time key counts changed). */
  onClaimed?(account: string, deviceIds: string[]): void;
  /**
   * The rooms held here, to find the accounts that share one with an account (device list updates). Without it,
   * no `m.device_list_update` is sent or taken in.
   */
  rooms?: {
    joinedRoomsOfServer(serverName: string): Promise<string[]>;
    roomServers(roomId: string, memberships: readonly string[]): Promise<string[]>;
  };
  /** Told that the keys of `userId` (another account's user) changed, for a hosted account sharing a room with it. */
  onUserKeysChanged?(account: string, userId: string): void;
  logger: HomeLogger;
}

/** The EDUs of device list changes: a device (`m.device_list_update`) and the cross-signing keys. */
export const DEVICE_LIST_EDUS: readonly string[] = ['m.device_list_update', 'm.signing_key_update'];
/** EDUs per transaction (the spec's limit). */
const EDUS_PER_TXN = 100;
/** Time allowed to deliver a device list update to one home (best effort, as typing). */
const DEVICE_LIST_EDU_TIMEOUT_MS = 10_000;

/** A refusal of a keys request: its status, errcode and message. */
class KeysRequestError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
  ) {
    super(message);
  }
}

/** The keys routes of a home, and the asking of other homes for the Matrix client API (see the file comment). */
export class FederationKeys {
  readonly #c: FederationKeysComponents;
  /** Home of a device of another account, as an answer named it: `${userId}\n${deviceId}` → PeerId. */
  readonly #hints = new Map<string, string>();
  #txn = 0;

  constructor(components: FederationKeysComponents) {
    this.#c = components;
  }

  // ---- Served: the routes of every home ----

  /** `/_matrix/federation/v1/user/...`: the keys routes, or undefined when the path is none of them. */
  async serve(method: string, rest: readonly string[], body: Json): Promise<FederationResponse | undefined> {
    try {
      if (method === 'POST' && rest.length === 2 && rest[0] === 'keys' && rest[1] === 'query') {
        const users = parseQuery(body['device_keys'], 'device_keys');
        return { status: 200, body: await this.#queryHosted(users) };
      }
      if (method === 'POST' && rest.length === 2 && rest[0] === 'keys' && rest[1] === 'claim') {
        const devices = parseClaim(body['one_time_keys'], 'one_time_keys');
        return { status: 200, body: await this.#claimHosted(devices) };
      }
      if (method === 'GET' && rest.length === 2 && rest[0] === 'devices') return await this.#devices(rest[1]!);
    } catch (err) {
      if (err instanceof KeysRequestError) {
        return { status: err.status, body: { errcode: err.errcode, error: err.message } };
      }
      throw err;
    }
    return undefined;
  }

  /** `GET /user/devices/{userId}`: the devices with keys and the cross-signing keys of a user hosted here. */
  async #devices(userId: string): Promise<FederationResponse> {
    const serverName = checkUserId(userId);
    const hosted = await this.#hosted(serverName, userId);
    if (hosted === undefined) {
      return { status: 404, body: { errcode: 'M_NOT_FOUND', error: `${userId} is not hosted on this home.` } };
    }
    const state = await this.#c.accounts.state(serverName);
    const devices = Object.entries(state.devices)
      .filter(([, device]) => hasKeys(device))
      .map(([deviceId, device]) => {
        const name = device['display_name'];
        return {
          device_id: deviceId,
          keys: deviceKeysView(device),
          ...(typeof name === 'string' ? { device_display_name: name } : {}),
        };
      });
    const crossSigning = boundCrossSigning(userId, hosted, state);
    return {
      status: 200,
      body: {
        user_id: userId,
        stream_id: streamId(await this.#c.accounts.versionVector(serverName)),
        devices,
        ...(crossSigning['master'] !== undefined ? { master_key: crossSigning['master'] } : {}),
        ...(crossSigning['self_signing'] !== undefined ? { self_signing_key: crossSigning['self_signing'] } : {}),
      },
    };
  }

  /** Device keys and the master and self-signing keys of the users hosted here (others are left out). */
  async #queryHosted(users: Map<string, string[]>): Promise<Json> {
    const deviceKeys: Record<string, Json> = {};
    const masterKeys: Json = {};
    const selfSigningKeys: Json = {};
    const homes: Record<string, Record<string, string>> = {};
    for (const [userId, wanted] of users) {
      const serverName = checkUserId(userId);
      const document = await this.#hosted(serverName, userId);
      if (document === undefined) continue;
      const state = await this.#c.accounts.state(serverName);
      const devices: Json = {};
      for (const [deviceId, device] of Object.entries(state.devices)) {
        if (!hasKeys(device) || (wanted.length > 0 && !wanted.includes(deviceId))) continue;
        devices[deviceId] = deviceKeysView(device);
        if (typeof device['home'] === 'string') (homes[userId] ??= {})[deviceId] = device['home'];
      }
      deviceKeys[userId] = devices;
      const crossSigning = boundCrossSigning(userId, document, state);
      if (crossSigning['master'] !== undefined) masterKeys[userId] = crossSigning['master'];
      if (crossSigning['self_signing'] !== undefined) selfSigningKeys[userId] = crossSigning['self_signing'];
    }
    return {
      device_keys: deviceKeys,
      master_keys: masterKeys,
      self_signing_keys: selfSigningKeys,
      [DEVICE_HOMES_FIELD]: homes,
    };
  }

  /**
   * One-time (else fallback) keys of the devices of users hosted here whose keys this home holds; a device of
   * such a user that lives on another home is named in DEVICE_HOMES_FIELD, so the asker goes there.
   */
  async #claimHosted(devices: Map<string, Map<string, string>>): Promise<Json> {
    const claimed: Record<string, Json> = {};
    const elsewhere: Record<string, Record<string, string>> = {};
    for (const [userId, wanted] of devices) {
      const serverName = checkUserId(userId);
      if ((await this.#hosted(serverName, userId)) === undefined) continue;
      const state = await this.#c.accounts.state(serverName);
      const mine: Json = {};
      for (const [deviceId, algorithm] of wanted) {
        const device = state.devices[deviceId];
        const home = device?.['home'];
        if (typeof home === 'string' && home !== this.#c.peerId) {
          (elsewhere[userId] ??= {})[deviceId] = home;
          continue;
        }
        if (device === undefined || this.#c.oneTimeKeys === undefined) continue;
        const key = await this.#c.oneTimeKeys.claimKey(serverName, deviceId, algorithm);
        if (key !== null) mine[deviceId] = { [key.keyId]: key.value };
      }
      claimed[userId] = mine;
      if (Object.keys(mine).length > 0) this.#c.onClaimed?.(serverName, Object.keys(mine));
    }
    return { one_time_keys: claimed, [DEVICE_HOMES_FIELD]: elsewhere };
  }

  // ---- Device list updates (m.device_list_update, m.signing_key_update), best effort ----

  /**
   * An account's devices or cross-signing keys changed (state keys `device:X`, `cross_signing:Y`): tells the
   * homes of the accounts sharing a room with it, and marks the change for the other accounts hosted here that
   * share one. Sent by the home that made the change, and by the account's server homes for changes from its other
   * homes (a client home may not reach everyone); a home told twice only marks the user changed twice.
   */
  async deviceListChanged(account: string, keys: readonly string[], madeHere: boolean): Promise<void> {
    const devices = keys.filter((k) => k.startsWith('device:')).map((k) => k.slice('device:'.length));
    const crossSigning = keys.some((k) => k.startsWith('cross_signing:'));
    const rooms = this.#c.rooms;
    if (rooms === undefined || (devices.length === 0 && !crossSigning)) return;
    // Through the documents' cache: the batch that changed the devices put the document it was applied with there.
    const document = await this.#c.documents.document(account);
    const status = document === undefined ? undefined : homeStatus(document, this.#c.peerId);
    if (document === undefined || status?.kind !== 'home') return;
    if (!madeHere && status.home.role !== 'server') return;
    const userId = document.user_id;
    const servers = await this.#sharingServers(account);
    if (servers.size === 0) return;
    const state = await this.#c.accounts.state(account);
    const stream = streamId(await this.#c.accounts.versionVector(account));
    const edus: Json[] = devices.slice(0, EDUS_PER_TXN - 1).map((deviceId) => {
      const device = state.devices[deviceId];
      return {
        edu_type: 'm.device_list_update',
        content: {
          user_id: userId,
          device_id: deviceId,
          stream_id: stream,
          prev_id: [],
          ...(device === undefined ? { deleted: true } : hasKeys(device) ? { keys: deviceKeysView(device) } : {}),
        },
      };
    });
    if (crossSigning) {
      const bound = boundCrossSigning(userId, document, state);
      edus.push({
        edu_type: 'm.signing_key_update',
        content: {
          user_id: userId,
          ...(bound['master'] !== undefined ? { master_key: bound['master'] } : {}),
          ...(bound['self_signing'] !== undefined ? { self_signing_key: bound['self_signing'] } : {}),
        },
      });
    }
    const peers = new Set<string>();
    for (const server of servers) {
      const other = await this.#c.documents.document(server);
      if (other === undefined) continue;
      if (homeStatus(other, this.#c.peerId).kind === 'home') this.#c.onUserKeysChanged?.(server, userId);
      for (const home of other.homes) if (home.peer_id !== this.#c.peerId) peers.add(home.peer_id);
    }
    const txnId = `keys.${Date.now()}.${++this.#txn}`;
    await Promise.allSettled(
      [...peers].map((peer) =>
        this.#c
          .request(peer, account, {
            method: 'PUT',
            path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
            body: { origin: account, origin_server_ts: Date.now(), pdus: [], edus },
            timeoutMs: DEVICE_LIST_EDU_TIMEOUT_MS,
          })
          .catch((err: unknown) =>
            this.#c.logger.debug({ peer, reason: (err as Error).message }, 'a device list update was not delivered'),
          ),
      ),
    );
  }

  /**
   * Takes in a device list EDU `origin` sent: its user's keys changed, so each account hosted here that shares a
   * room with it is told (its clients' `device_lists.changed` then name the user, and they query again). Returns
   * why it was refused, or undefined.
   */
  async receiveEdu(origin: string, edu: Json): Promise<string | undefined> {
    const content = edu['content'];
    const userId = isRecord(content) ? content['user_id'] : undefined;
    if (typeof userId !== 'string') return 'the update names no user_id';
    let serverName: string;
    try {
      serverName = parseUserId(userId).serverName;
    } catch {
      return `${userId.slice(0, 100)} is not a user id`;
    }
    if (serverName !== origin) return `${userId} is not a user of ${origin}`;
    for (const server of await this.#sharingServers(origin)) {
      const document = await this.#c.accounts.document(server);
      if (document !== undefined && homeStatus(document, this.#c.peerId).kind === 'home')
        this.#c.onUserKeysChanged?.(server, userId);
    }
    return undefined;
  }

  /** The other servers (accounts) joined to a room held here that `account` is joined to. */
  async #sharingServers(account: string): Promise<Set<string>> {
    const out = new Set<string>();
    const rooms = this.#c.rooms;
    if (rooms === undefined) return out;
    for (const roomId of await rooms.joinedRoomsOfServer(account)) {
      for (const server of await rooms.roomServers(roomId, ['join'])) if (server !== account) out.add(server);
    }
    return out;
  }

  /** The document of an account hosted here whose user is `userId`, or undefined. */
  async #hosted(serverName: string, userId: string): Promise<AccountDocument | undefined> {
    const document = await this.#c.accounts.document(serverName);
    if (document === undefined || document.user_id !== userId) return undefined;
    return homeStatus(document, this.#c.peerId).kind === 'home' ? document : undefined;
  }

  // ---- Asked: keys other homes hold, for the Matrix client API (MatrixRemoteKeysPort) ----

  /** Device and cross-signing keys of users of other accounts, each server asked at one of its homes. */
  async query(origin: string, users: Record<string, string[]>, timeoutMs: number): Promise<MatrixRemoteKeyQuery> {
    const out: MatrixRemoteKeyQuery = { device_keys: {}, master_keys: {}, self_signing_keys: {}, failures: {} };
    const each = { failures: out.failures, what: 'a keys query', timeoutMs };
    await this.#eachServer(Object.keys(users), each, async (serverName, userIds, left) => {
      const request = Object.fromEntries(userIds.map((u) => [u, users[u] ?? []]));
      mergeQuery(out, await this.#queryServer(origin, serverName, request, left), userIds);
    });
    return out;
  }

  /** One server's answer: from here when it is hosted here, else from its homes (server homes first). */
  async #queryServer(origin: string, serverName: string, users: Record<string, string[]>, timeoutMs: number) {
    const document = await this.#documentOf(serverName);
    const wanted = new Map(Object.entries(users).filter(([userId]) => userId === document.user_id));
    if (wanted.size === 0) return {};
    const answer =
      homeStatus(document, this.#c.peerId).kind === 'home'
        ? await this.#queryHosted(wanted)
        : await this.#askHomes(origin, document, 'query', { device_keys: Object.fromEntries(wanted) }, timeoutMs);
    const userId = document.user_id;
    this.#learnHints(document, answer);
    return checkQueryAnswer(answer, userId, document);
  }

  /** Asks the homes of an account in turn (server homes first) until one answers 200 in time. */
  async #askHomes(
    origin: string,
    document: AccountDocument,
    route: 'query' | 'claim',
    body: Json,
    timeoutMs: number,
  ): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    const errors: string[] = [];
    for (const peer of homesInOrder(document, this.#c.peerId)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        errors.push('the time allowed ran out');
        break;
      }
      try {
        const answer = await this.#c.request(peer, origin, {
          method: 'POST',
          path: `/_matrix/federation/v1/user/keys/${route}`,
          body,
          timeoutMs: left,
        });
        if (answer.status === 200 && isRecord(answer.body)) return answer.body;
        errors.push(`${peer}: answered ${answer.status}`);
      } catch (err) {
        errors.push(`${peer}: ${(err as Error).message}`);
      }
    }
    throw new Error(`no home of ${document.user_id} answered (${errors.join('; ') || 'it has no other homes'})`);
  }

  /**
   * One-time (else fallback) keys of devices held by other homes: of other accounts' users, and of the asking
   * account's own devices on its other homes. Each device is asked of the home its `device.put` names (known here
   * for accounts hosted here, else from an earlier answer), else of its account's homes in turn, which name it.
   */
  async claim(
    origin: string,
    devices: Record<string, Record<string, string>>,
    timeoutMs: number,
  ): Promise<MatrixRemoteKeyClaim> {
    const out: MatrixRemoteKeyClaim = { one_time_keys: {}, failures: {} };
    const each = { failures: out.failures, what: 'a keys claim', timeoutMs };
    await this.#eachServer(Object.keys(devices), each, async (serverName, userIds, left) => {
      const document = await this.#documentOf(serverName);
      const userId = document.user_id;
      if (!userIds.includes(userId)) return;
      const wanted = new Map(Object.entries(devices[userId] ?? {}));
      out.one_time_keys[userId] = await this.#claimOf(origin, document, wanted, left);
    });
    return out;
  }

  async #claimOf(
    origin: string,
    document: AccountDocument,
    wanted: Map<string, string>,
    timeoutMs: number,
  ): Promise<Record<string, Record<string, unknown>>> {
    const userId = document.user_id;
    const claimed: Record<string, Record<string, unknown>> = {};
    const deadline = Date.now() + timeoutMs;
    const hostedHere = homeStatus(document, this.#c.peerId).kind === 'home';
    if (hostedHere) {
      // The device list is replicated here: each device's home is known; those held here are claimed at once.
      const request = [...wanted];
      const answer = await this.#claimHosted(new Map([[userId, new Map(wanted)]]));
      this.#settle(document, answer, this.#c.peerId, request, wanted, claimed);
    }
    const asked = new Set<string>();
    const errors: string[] = [];
    while (wanted.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) {
        errors.push('the time allowed ran out');
        break;
      }
      // The home named for a device still wanted (asked once each); else, when no home is known, any home.
      const named = [...wanted.keys()]
        .map((d) => this.#hints.get(`${userId}\n${d}`))
        .find((p): p is string => p !== undefined && p !== this.#c.peerId && !asked.has(p));
      const peer =
        named ?? (hostedHere ? undefined : homesInOrder(document, this.#c.peerId).find((p) => !asked.has(p)));
      if (peer === undefined) break;
      asked.add(peer);
      const request = [...wanted].filter(([d]) => {
        const hint = this.#hints.get(`${userId}\n${d}`);
        return hint === undefined || hint === peer || asked.has(hint);
      });
      try {
        const answer = await this.#c.request(peer, origin, {
          method: 'POST',
          path: '/_matrix/federation/v1/user/keys/claim',
          body: { one_time_keys: { [userId]: Object.fromEntries(request) } },
          timeoutMs: left,
        });
        if (answer.status !== 200 || !isRecord(answer.body)) {
          errors.push(`${peer}: answered ${answer.status}`);
          continue;
        }
        this.#settle(document, answer.body, peer, request, wanted, claimed);
      } catch (err) {
        errors.push(`${peer}: ${(err as Error).message}`);
      }
    }
    if (wanted.size > 0 && errors.length > 0) {
      throw new Error(
        `the homes holding keys of ${[...wanted.keys()].join(', ')} did not answer (${errors.join('; ')})`,
      );
    }
    return claimed;
  }

  /**
   * Takes a claim answer of `peer` for the `asked` devices: the keys claimed, the homes it names for others; a
   * device it answered for without naming another home has no key left (nothing more to ask for it).
   */
  #settle(
    document: AccountDocument,
    answer: Json,
    peer: string,
    asked: Array<[string, string]>,
    wanted: Map<string, string>,
    claimed: Record<string, Record<string, unknown>>,
  ): void {
    const userId = document.user_id;
    this.#learnHints(document, answer);
    this.#take(answer, userId, wanted, claimed);
    const named = (answer[DEVICE_HOMES_FIELD] as Record<string, Json> | undefined)?.[userId] ?? {};
    for (const [deviceId] of asked) {
      const hint = named[deviceId];
      if (typeof hint !== 'string' || hint === peer) wanted.delete(deviceId);
    }
  }

  /** Takes the claimed keys of an answer: one `<algorithm>:<id>` key per device, of the algorithm asked. */
  #take(
    answer: Json,
    userId: string,
    wanted: Map<string, string>,
    claimed: Record<string, Record<string, unknown>>,
  ): void {
    const keys = (answer['one_time_keys'] as Record<string, unknown> | undefined)?.[userId];
    if (!isRecord(keys)) return;
    for (const [deviceId, key] of Object.entries(keys)) {
      const algorithm = wanted.get(deviceId);
      if (algorithm === undefined || !isRecord(key)) continue;
      const entries = Object.entries(key);
      if (entries.length !== 1 || !entries[0]![0].startsWith(`${algorithm}:`)) continue;
      claimed[deviceId] = key;
      wanted.delete(deviceId);
    }
  }

  /** Remembers the homes an answer names for devices (only homes of the account's document). */
  #learnHints(document: AccountDocument, answer: Json): void {
    const named = (answer[DEVICE_HOMES_FIELD] as Record<string, unknown> | undefined)?.[document.user_id];
    if (!isRecord(named)) return;
    for (const [deviceId, peer] of Object.entries(named)) {
      if (typeof peer !== 'string' || homeStatus(document, peer).kind !== 'home') continue;
      const key = `${document.user_id}\n${deviceId}`;
      this.#hints.delete(key);
      this.#hints.set(key, peer);
      if (this.#hints.size > HINTS_REMEMBERED) this.#hints.delete(this.#hints.keys().next().value!);
    }
  }

  /**
   * Runs `work` for each server of `userIds` with its users and the time left, a few servers at once, all within
   * `timeoutMs` (the client's `timeout`, for the whole request); a server whose work fails or does not end in
   * time (no home answered, no document) is named in `failures`, and why is logged.
   */
  async #eachServer(
    userIds: string[],
    each: { failures: Record<string, Json>; what: string; timeoutMs: number },
    work: (serverName: string, userIds: string[], timeLeftMs: number) => Promise<void>,
  ): Promise<void> {
    const deadline = Date.now() + each.timeoutMs;
    await eachLimited([...groupByServer(userIds)], SERVERS_AT_ONCE, async ([serverName, ids]) => {
      try {
        if (!isServerName(serverName)) {
          each.failures[serverName] = {
            status: 404,
            message: `${serverName.slice(0, 100)} is not the server name of an account (an Ed25519 key): no home can be asked.`,
          };
          return;
        }
        await withinTime(work(serverName, ids, deadline - Date.now()), deadline - Date.now(), each.timeoutMs);
      } catch (err) {
        each.failures[serverName] = failure(err);
        this.#c.logger.info(
          { server: serverName, reason: (err as Error).message },
          `${each.what} of another home failed`,
        );
      }
    });
  }

  async #documentOf(serverName: string): Promise<AccountDocument> {
    const document = (await this.#c.documents.document(serverName)) ?? (await this.#c.documents.resolve(serverName));
    if (document === undefined) throw new Error(`no account document of ${serverName} was found (asked the DHT)`);
    return document;
  }
}

// ---- Requests: parsing and limits ----

/** `{ userId: [deviceId...] }` of a keys query, within the limits; throws KeysRequestError otherwise. */
export function parseQuery(value: unknown, field: string): Map<string, string[]> {
  if (!isRecord(value)) throw bad(`${field} must be an object of user ids to lists of device ids.`);
  const entries = Object.entries(value);
  checkUserCount(entries.length, field);
  let count = 0;
  const out = new Map<string, string[]>();
  for (const [userId, devices] of entries) {
    checkUserId(userId);
    if (!Array.isArray(devices) || !devices.every((d) => typeof d === 'string')) {
      throw bad(`${field}.${userId} must be a list of device ids ([] for all devices).`);
    }
    count += devices.length;
    checkDeviceCount(count, field);
    out.set(userId, devices as string[]);
  }
  return out;
}

/** `{ userId: { deviceId: algorithm } }` of a keys claim, within the limits; throws KeysRequestError otherwise. */
export function parseClaim(value: unknown, field: string): Map<string, Map<string, string>> {
  if (!isRecord(value)) throw bad(`${field} must be an object of user ids to { device id: algorithm }.`);
  const entries = Object.entries(value);
  checkUserCount(entries.length, field);
  let count = 0;
  const out = new Map<string, Map<string, string>>();
  for (const [userId, devices] of entries) {
    checkUserId(userId);
    if (!isRecord(devices) || !Object.values(devices).every((a) => typeof a === 'string' && a.length <= 128)) {
      throw bad(`${field}.${userId} must be an object of device ids to key algorithms.`);
    }
    count += Object.keys(devices).length;
    checkDeviceCount(count, field);
    out.set(userId, new Map(Object.entries(devices as Record<string, string>)));
  }
  return out;
}

function checkUserCount(count: number, field: string): void {
  if (count > MAX_KEY_USERS) {
    throw new KeysRequestError(
      413,
      'M_TOO_LARGE',
      `${field} names ${count} users; at most ${MAX_KEY_USERS} are taken per request: split it.`,
    );
  }
}

function checkDeviceCount(count: number, field: string): void {
  if (count > MAX_KEY_DEVICES) {
    throw new KeysRequestError(
      413,
      'M_TOO_LARGE',
      `${field} names more than ${MAX_KEY_DEVICES} devices; at most ${MAX_KEY_DEVICES} are taken per request: split it.`,
    );
  }
}

/** The server name of a well-formed polyhome user id; throws KeysRequestError saying what is wrong. */
function checkUserId(userId: string): string {
  try {
    return parseUserId(userId).serverName;
  } catch (err) {
    throw bad(`${userId.slice(0, 100)} is not a user id: ${(err as Error).message}.`, 'M_INVALID_PARAM');
  }
}

function bad(message: string, errcode = 'M_BAD_JSON'): KeysRequestError {
  return new KeysRequestError(400, errcode, message);
}

// ---- Answers ----

/** The replicated cross-signing keys the document binds (all when it names no master key). */
function boundCrossSigning(userId: string, document: AccountDocument, state: MatrixAccountState): Record<string, Json> {
  const master = document.cross_signing?.master;
  const out: Record<string, Json> = {};
  for (const usage of ['master', 'self_signing'] as const) {
    const body = state.crossSigning[usage];
    if (body === undefined) continue;
    if (master !== undefined && crossSigningRefusal(usage, body as unknown as CrossSigningBody, userId, master))
      continue;
    out[usage] = body;
  }
  return out;
}

/**
 * What another account's home answered, kept only where it is that account's: its user's devices (each of that
 * user and under its own id), and cross-signing keys the account document binds.
 */
function checkQueryAnswer(answer: Json, userId: string, document: AccountDocument): Json {
  const devices = (answer['device_keys'] as Record<string, unknown> | undefined)?.[userId];
  const kept: Json = {};
  if (isRecord(devices)) {
    for (const [deviceId, device] of Object.entries(devices)) {
      if (isRecord(device) && device['user_id'] === userId && device['device_id'] === deviceId) kept[deviceId] = device;
    }
  }
  const out: Json = { device_keys: { [userId]: kept } };
  const master = document.cross_signing?.master;
  for (const [field, usage] of [
    ['master_keys', 'master'],
    ['self_signing_keys', 'self_signing'],
  ] as const) {
    const key = (answer[field] as Record<string, unknown> | undefined)?.[userId];
    if (!isRecord(key) || key['user_id'] !== userId) continue;
    if (master !== undefined && crossSigningRefusal(usage, key as unknown as CrossSigningBody, userId, master))
      continue;
    out[field] = { [userId]: key };
  }
  return out;
}

function mergeQuery(out: MatrixRemoteKeyQuery, answer: Json, userIds: string[]): void {
  for (const field of ['device_keys', 'master_keys', 'self_signing_keys'] as const) {
    const part = answer[field];
    if (!isRecord(part)) continue;
    for (const userId of userIds) {
      const value = part[userId];
      if (isRecord(value)) (out[field] as Record<string, unknown>)[userId] = value;
    }
  }
}

/** A DeviceKeys object as the spec shows it: the device body without its home, the display name under `unsigned`. */
function deviceKeysView(body: Json): Json {
  const { display_name, home: _home, ...keys } = body;
  return { ...keys, unsigned: typeof display_name === 'string' ? { device_display_name: display_name } : {} };
}

function hasKeys(body: Json): boolean {
  const keys = body['keys'];
  return isRecord(keys) && Object.keys(keys).length > 0;
}

/** A device list version every home of the account reaches alike: the ops held, summed over the homes. */
function streamId(vector: VersionVector): number {
  return Object.values(vector).reduce((sum, seq) => sum + seq, 0);
}

function failure(err: unknown): Json {
  return { status: 503, message: (err as Error).message };
}

/** The homes of an account to ask, server homes first, then client homes; never this one. */
function homesInOrder(document: AccountDocument, self: string): string[] {
  const homes = document.homes.filter((h) => h.peer_id !== self);
  return [...homes.filter((h) => h.role === 'server'), ...homes.filter((h) => h.role !== 'server')].map(
    (h) => h.peer_id,
  );
}

/** User ids by server name (what follows the first colon). */
function groupByServer(userIds: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const userId of userIds) {
    const serverName = userId.slice(userId.indexOf(':') + 1);
    out.set(serverName, [...(out.get(serverName) ?? []), userId]);
  }
  return out;
}

async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
}

/** `work`, or a rejection once `leftMs` ran out (the work itself is not stopped: its answer is dropped). */
async function withinTime(work: Promise<void>, leftMs: number, totalMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the time allowed (${totalMs} ms) ran out before a home answered`)),
      Math.max(0, leftMs),
    );
  });
  work.catch(() => undefined);
  try {
    await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
