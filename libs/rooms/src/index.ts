// @polyhome/rooms: Matrix room versions 10 and 11 as pure functions (event format, content and reference
// hashes, redaction, signing, authorization rules, event building). Imports only @polyhome/identity.
export * from './types.js';
export { InvalidEventTemplateError } from './errors.js';
export { isUserId, serverNameOf } from './json.js';
export { validatePdu } from './format.js';
export type { PduValidation, FormatRefusalCode } from './format.js';
export { redactPdu } from './redaction.js';
export type { RedactedPdu } from './redaction.js';
export { contentHashOf, checkContentHash, referenceHashOf, eventIdOf } from './hashes.js';
export { signPdu, addSignature, requiredSigners, verifyPduSignatures } from './signing.js';
export type { UnsignedPdu, SigningIdentity, ResolveKey } from './signing.js';
export { checkAuth, authTypesFor, checkAuthEvents, authStateOf, redactionAllowed } from './auth.js';
export type { AuthRefusalCode } from './auth.js';
export { buildEvent, MAX_DEPTH } from './build.js';
export type { EventTemplateInput } from './build.js';
export { authChain, authDifference, AuthChainTooLargeError, DEFAULT_MAX_AUTH_CHAIN_EVENTS } from './auth-chain.js';
export type { AuthChainOptions } from './auth-chain.js';
export { resolveState, isPowerEvent, splitConflicts, UnsupportedRoomVersionError } from './state-res.js';
export type { ResolveStateOptions, StateSplit } from './state-res.js';
export { nextForwardExtremities, stateBeforeEvent, stateAfterEvent, MissingPrevStateError } from './extremities.js';
export type { DagEdge } from './extremities.js';
export { lexicographicTopologicalSort, CycleError } from './topo.js';
