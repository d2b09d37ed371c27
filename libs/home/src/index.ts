/**
 * @packageDocumentation
 *
 * One home, framework-free: `Home` composes the libp2p host, the sync service, discovery and the local op
 * writer over store ports (`HomeStore`: the SQL replica store of `@polyhome/storage` satisfies it) and the
 * queue port of `@polyhome/queue`. The server runs it behind a thin Nest provider, the client-side node in its
 * process. It imports no NestJS and no TypeORM (eslint enforces it).
 */
export { Home, ANNOUNCE_QUEUE, NOT_A_HOME, REPUBLISH_SLOTS, republishSlot } from './home.js';
export type { HomeComponents, HomeInit } from './home.js';
export {
  addHomeToAccount,
  changeAccountDocument,
  departureDocument,
  removeHomeFromAccount,
  revocationPin,
} from './documents.js';
export {
  MIGRATE_JOB_KIND,
  MIGRATION_CATCH_UP_TIMEOUT_MS,
  MigrationJobs,
  MigrationRefusal,
  migrationProgressView,
} from './migration-jobs.js';
export type {
  MigrationParams,
  MigrationPoint,
  MigrationPorts,
  MigrationRequest,
  MigrationStep,
} from './migration-jobs.js';
export type { DocumentStore, NewHome } from './documents.js';
export { HomeEvents } from './events.js';
export type { HomeEventMap } from './events.js';
export { LocalChangeRefusedError, LocalOpWriter } from './local-op-writer.js';
export type { LocalChange } from './local-op-writer.js';
export { BackgroundWork } from './background.js';
export {
  ADMIN_JOBS_QUEUE,
  progressView,
  RESYNC_JOB_KIND,
  RESYNC_TIMEOUT_MS,
  ResyncJobs,
  ResyncRefusal,
} from './resync-jobs.js';
export type {
  AdminJobData,
  JobChange,
  JobRecord,
  JobState,
  JobStore,
  ResyncJobsPorts,
  ResyncParams,
} from './resync-jobs.js';
export { discoveryOf, withTransientHost } from './transient-host.js';
export type { HostWithDiscovery } from './transient-host.js';
export { parseHomeTarget, peerIdOfMultiaddr } from './addresses.js';
export type { HomeTarget } from './addresses.js';
export { bodyParserError, jsonDepthCheck, JSON_TOO_DEEP, MAX_JSON_DEPTH } from './http-errors.js';
export { jsonTextDepth } from '@polyhome/identity';
export { connectionsCheckingIntervalMs, DEFAULT_HTTP_LIMITS, hardenHttpServer } from './http-limits.js';
export type { HttpLimits } from './http-limits.js';
export { RefusalLog, REFUSAL_LINES_PER_WINDOW, REFUSAL_WINDOW_MS } from './refusal-log.js';
export type { Refusal, RefusalLogInit, RefusalSummary } from './refusal-log.js';
export type { BodyErrorAnswer } from './http-errors.js';
export {
  AccountNotHeldError,
  HomeAddressError,
  HomeStoppingError,
  InvalidPairingCodeError,
  NotConnectedError,
  SelfRevocationError,
} from './errors.js';
export {
  FilePairingCodeStore,
  MemoryPairingCodeStore,
  newPairingCode,
  normalizePairingCode,
  PAIRING_CODE_KEPT_MS,
  PAIRING_CODES_KEPT,
  PAIRING_MAX_FAILURES,
  PairingCodes,
} from './pairing.js';
export type { PairingCodeStore, PairingState } from './pairing.js';
export { SILENT_LOGGER } from './ports.js';
export { RoomEngine, MAX_PAGE, MAX_SYNC_TIMELINE } from './rooms/engine.js';
export type { RoomEngineComponents } from './rooms/engine.js';
export { roomBlockedError } from './rooms/room-blocks.js';
export type { RoomBlock, RoomBlockStore } from './rooms/room-blocks.js';
export { RoomEventPipeline, keyResolverFor } from './rooms/pipeline.js';
export type { AcceptOutcome, DocumentSource, RefusalStage } from './rooms/pipeline.js';
export { createRoomStateEvents, defaultPowerLevels, presetOf } from './rooms/create-room.js';
export type { StateEventSpec } from './rooms/create-room.js';
export { KeyedQueue } from './keyed-queue.js';
export {
  Ephemeral,
  MAX_EDU_BYTES,
  MAX_EDU_ENTRIES,
  MAX_STATUS_MSG,
  MAX_SYNC_RECEIPTS,
  MAX_TYPING_PER_ROOM,
  MAX_TYPING_TIMEOUT_MS,
  PRESENCE_TIMEOUT_MS,
} from './ephemeral/ephemeral.js';
export type {
  Edu,
  EduOutcome,
  EphemeralComponents,
  EphemeralRooms,
  LocalEdu,
  PresenceEduEntry,
  ReceiptEduEntry,
} from './ephemeral/ephemeral.js';
export type { ReceiptInput, ReceiptStore, StoredReceipt } from './ephemeral/receipt-store.js';
export type {
  CurrentStateChange,
  ForwardExtremity,
  PersistEventInput,
  PersistEventResult,
  RoomStore,
  ServerRoomMembership,
  StateBeforeInput,
  StateDelta,
  StoredRoomEvent,
  StreamTimeline,
  TopologicalPage,
} from './room-store.js';
export type {
  AccountStore,
  DeliveryStore,
  HomeAccounts,
  HomeLogger,
  HomeStore,
  HostedAccountPage,
  LocalOpContext,
  LocalOpStore,
  StateStore,
} from './ports.js';
export {
  checkPasswordGuess,
  DEFAULT_GUESS_POLICY,
  GuessBackoffError,
  hashPassword,
  passwordHashesComputed,
  PasswordGuessLimiter,
  replicatedVerifier,
  verifyAgainstDummy,
  verifyPassword,
} from './passwords.js';
export type { PasswordGuessPolicy } from './passwords.js';
export {
  activeRooms,
  ADMIN_ACTOR_DEVICE,
  clearRoom,
  deviceDeletions,
  devicesOfHome,
  leaveAllRooms,
} from './account-admin.js';
export type { AdminRoomClearing, AdminRoomEngine, ClearedRoom, LeaveRoomsPorts, LeftRooms } from './account-admin.js';
export {
  DEFAULT_MAX_PENDING_PER_SENDER,
  MAX_TO_DEVICE_EDU_BYTES,
  MAX_TO_DEVICE_EDU_MESSAGES,
  TO_DEVICE_EDU,
  ToDevice,
  messageIdOf,
} from './to-device/to-device.js';
export type { ToDeviceComponents, ToDeviceEdu, ToDeviceEduOutcome, ToDeviceInit } from './to-device/to-device.js';
export type {
  ToDeviceAcceptOutcome,
  ToDeviceInboxInput,
  ToDeviceKey,
  ToDeviceOutboxInput,
  ToDeviceStore,
} from './to-device/to-device-store.js';
export {
  chooseHome,
  localUrlOf,
  ProxyListenError,
  ProxyOptionsError,
  runClientApiProxy,
  serveClientApi,
  startClientApiProxy,
} from './client-api.js';
export type {
  ClientApiGatewayInit,
  ClientApiProxy,
  ClientApiProxyInit,
  ClientApiProxyRunInit,
  ProxyTarget,
  RunningClientApiProxy,
} from './client-api.js';
