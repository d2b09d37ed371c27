// Caps on everything that arrives from a peer, and the session's flow-control window. Values are
// chosen so one op, one batch and one frame stay small next to the p2p frame cap and cheap to verify.

/** Longest op `key` (device id, room id, usage), in UTF-8 bytes; Matrix ids are capped at 255 bytes. */
export const MAX_KEY_BYTES = 255;
/** Largest canonical JSON encoding of an op `body`, in bytes. */
export const MAX_BODY_BYTES = 16 * 1024;
/** Largest canonical JSON encoding of a whole signed op, in bytes. */
export const MAX_OP_BYTES = 32 * 1024;
/** Most ops in one `ops` message or one applyOps batch; larger batches are refused whole. */
export const MAX_OPS_PER_BATCH = 500;
/** Ops sent per `ops` message by a session (kept below MAX_OPS_PER_BATCH so a frame stays well under its cap). */
export const SESSION_BATCH_SIZE = 200;
/**
 * Ops sent per `ops` message while the peer lacks more than a window of ordinary batches (SESSION_WINDOW x
 * SESSION_BATCH_SIZE ops): a home catching up applies fewer, larger batches, one transaction each. Within
 * MAX_OPS_PER_BATCH, which every home accepts; SESSION_BATCH_BYTES still bounds the message.
 */
export const CATCH_UP_BATCH_SIZE = 400;
/** Most bytes of ops (their JSON) in one `ops` message a session sends; keeps frames well under a 1 MiB frame cap. */
export const SESSION_BATCH_BYTES = 512 * 1024;
/** `ops` messages a session sends before waiting for an ack (flow control). */
export const SESSION_WINDOW = 4;
/** Most out-of-order ops held per origin while an earlier seq is missing; more are refused as `pending_full` (and re-sent later). */
export const MAX_PENDING_PER_ORIGIN = 1024;
/** Most out-of-order ops held for all origins of one account together. */
export const MAX_PENDING_TOTAL = 8192;
/** Most origins not (yet) in the document whose ops are held waiting for a newer document. */
export const MAX_PENDING_UNKNOWN_ORIGINS = 8;
/** Most out-of-order ops one store holds for all its accounts together (a PendingBudget; one store per process). */
export const MAX_PENDING_STORE_OPS = 16_384;
/** Most bytes (JSON) of out-of-order ops one store holds for all its accounts together. */
export const MAX_PENDING_STORE_BYTES = 16 * 1024 * 1024;
/** Most conflicting ops kept as equivocation evidence per origin (the slot winner is computed regardless). */
export const MAX_EVIDENCE_PER_ORIGIN = 64;
/** Most entries in a version vector received from a peer (homes plus revoked homes, with room to spare). */
export const MAX_VV_ENTRIES = 2048;
/** Longest error reason text a session sends or accepts, in characters. */
export const MAX_REASON_LENGTH = 512;
