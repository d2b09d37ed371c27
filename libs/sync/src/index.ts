// @polyhome/sync: signed ops, their validation, the CRDT state of one account, version vectors and the
// sync session as a pure state machine. Framework-free and pure: no network, clock or database.
export * from './types.js';
export * from './constants.js';
export * from './errors.js';
export { createOp, opHash, opHashOfSigned, namespaceOf, compareOps } from './op.js';
export type { OpFields } from './op.js';
export {
  parseOp,
  parseEncodedOp,
  verifyOpSignature,
  verifyEncodedOp,
  checkOrigin,
  checkCrossSigning,
  crossSigningRefusal,
  validateOp,
  assertValidOp,
  accountOf,
} from './validate.js';
export { deviceSignatureRefusal, deviceSignedBytes, hasValidSignature } from './key-signatures.js';
export { adoptOps, signatureChecksOf, verifyOpsAhead } from './verify-ahead.js';
export { heldVector, joinVectors } from './session.js';
export type { ParseContext, OriginCheck, OpValidation, EncodedOp } from './validate.js';
export {
  OP_KINDS,
  OP_KIND_LIST,
  STATE_FIELDS,
  isOpKind,
  kindsOf,
  fieldOf,
  isTombstone,
  emptyState,
  putState,
  LAZY_NAMESPACES,
  isLazyNamespace,
  summaryGroupOf,
} from './kinds.js';
export { winnerOf, nextWinner, ranksByValue } from './winner.js';
export { summaryOf, summaryRowHash, xorInto, type StateSummary } from './summary.js';
export {
  compareRoomKeys,
  compareVersionIds,
  isBetterRoomKey,
  parseVersionId,
  roomKeyKey,
  roomKeyPrefix,
  versionId,
  type RoomKeyBody,
  type RoomKeyRank,
  type RoomKeyVersionBody,
} from './room-keys.js';
export type {
  OpKindSpec,
  KindTable,
  AccountStateOf,
  OpBody,
  StateField,
  StateRecords,
  AccountState,
  JsonAccountState,
  CheckedTable,
} from './kinds.js';
export type {
  BodyValidator,
  EmptyBody,
  AccountDataBody,
  RoomAccountDataBody,
  ProfileBody,
  PushRuleBody,
  PushRuleKind,
  PasswordBody,
} from './bodies.js';
export { pairKey, PROFILE_FIELDS, PUSH_RULE_KINDS } from './bodies.js';
export { stateKey } from './state.js';
export {
  createReplica,
  applyOps,
  offerDocument,
  documentOf,
  versionVector,
  logDigests,
  opsMissing,
  nextLamport,
  stateOf,
  pendingCount,
  flaggedOrigins,
  evidenceOf,
  equivocators,
  opAt,
  cloneReplica,
  makeLocalOp,
} from './replica.js';
export type { Replica, ReplicaOptions, DocumentOffer, Evidence, LocalChange } from './replica.js';
export { planApply, slotsToRead, retractions, listsOrigin, emptyApplyResult } from './plan.js';
export type { ApplyView, ApplyPlan, PlannedOp, PlannedEvidence, PlanOptions } from './plan.js';
export {
  PendingBuffer,
  PendingBudget,
  PendingDraft,
  pendingBytes,
  pendingRefusal,
  DEFAULT_PENDING_LIMITS,
} from './pending.js';
export type { PendingOp, PendingLimits, PendingReader, PendingChange } from './pending.js';
export {
  initSession,
  admissionError,
  opsRequest,
  generate,
  receive,
  renewHello,
  failSession,
  parseSyncMessage,
} from './session.js';
export type { SessionState, LocalSnapshot, OpsRequest, SessionEffect } from './session.js';
export {
  asReplicationWork,
  beginClientWork,
  clientIdleWhile,
  isReplicationWork,
  outsideReplicationWork,
  replicationGateStats,
  replicationTurn,
} from './work-priority.js';
