// /polyhome/document/1.0.0: one length-prefixed JSON request, one length-prefixed JSON answer, then close.
// - Fetch `{ account }` → `{ document }` or `{ error: "not_found" }`. A home answers only a peer that the account
//   document it holds names as a home (or revoked home); anyone else gets the same `not_found` whether or not
//   the account is hosted, as the sync protocol does, so a stranger cannot probe which accounts live here.
// - Offer `{ account, document }` → `{ accepted: true }` when the sender is a home (or revoked home) of the
//   offered document and that document is now in force here (it verified, is signed by the root key and is newer
//   than the held one, or is the held one), else the same `not_found`. It lets a home the others do not know yet
//   (restored from a backup, named in a document only it holds) bring them the document that names it; the root
//   signature is the authority, not the sender. A sender the offered document does not name (a stranger holding
//   a public document) is answered `not_found` before the store is asked, hosted here or not, so the answer and
//   its timing say nothing of what is hosted; its document is then offered to the store all the same.
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { homeStatus, isServerName, verifyAccountDocument, type AccountDocument } from '@polyhome/identity';
import { DOCUMENT_FETCH_TIMEOUT, DOCUMENT_MAX_FRAME_BYTES, DOCUMENT_PROTOCOL, WRITE_TIMEOUT } from './constants.js';
import { DocumentUnavailableError, InvalidAccountIdError } from './errors.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';

const NOT_FOUND = { error: 'not_found' } as const;

/** Answers one document request on an inbound stream; `documentOf` reads the held document of an account. */
export async function answerDocumentRequest(
  stream: Stream,
  connection: Connection,
  log: P2pLogger,
  documentOf: (account: string) => Promise<AccountDocument | undefined>,
  offered: (account: string, document: AccountDocument, from: string) => Promise<boolean>,
): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: DOCUMENT_MAX_FRAME_BYTES });
  const signal = AbortSignal.timeout(DOCUMENT_FETCH_TIMEOUT);
  let answer: unknown = NOT_FOUND;
  let stranger: { account: string; document: AccountDocument } | undefined;
  const peer = connection.remotePeer.toString();
  try {
    const request = parseJson((await lp.read({ signal })).subarray());
    const account = (request as { account?: unknown } | undefined)?.account;
    const offer = (request as { document?: unknown } | undefined)?.document;
    if (offer !== undefined) {
      if (typeof account === 'string' && isServerName(account)) {
        let verified: AccountDocument | undefined;
        try {
          verified = verifyAccountDocument(offer, { expectedServerName: account });
        } catch (error) {
          // Answered `not_found` like any other refusal; the reason stays here.
          log.debug({ ...errorFields(error), peer, account, protocol: DOCUMENT_PROTOCOL }, 'offered document refused');
          verified = undefined;
        }
        if (verified !== undefined && homeStatus(verified, peer).kind === 'unknown') {
          // A stranger: answered first, alike whether the account is hosted; the store takes the document after.
          stranger = { account, document: verified };
        } else if (verified !== undefined && (await offered(account, verified, peer))) {
          answer = { accepted: true };
        }
      }
    } else if (typeof account === 'string' && isServerName(account)) {
      const document = await documentOf(account);
      if (document !== undefined && homeStatus(document, peer).kind !== 'unknown') {
        answer = { document };
      }
    }
    await lp.write(new TextEncoder().encode(JSON.stringify(answer)), { signal: AbortSignal.timeout(WRITE_TIMEOUT) });
    await stream.close({ signal: AbortSignal.timeout(WRITE_TIMEOUT) });
  } catch (error) {
    // A peer that hangs up or sends junk, or the store failing: the stream ends either way.
    log.debug({ ...errorFields(error), peer, protocol: DOCUMENT_PROTOCOL }, 'document request not answered');
    stream.abort(error instanceof Error ? error : new Error(String(error)));
  }
  if (stranger !== undefined) {
    try {
      await offered(stranger.account, stranger.document, peer);
    } catch (error) {
      log.debug({ ...errorFields(error), peer, protocol: DOCUMENT_PROTOCOL }, 'offered document not taken in');
    }
  }
}

/**
 * Asks a connected (or dialable) peer for an account document and verifies it (structure and root signature,
 * for that account). Throws DocumentUnavailableError when the peer gives none, InvalidAccountIdError for a
 * bad server name, and the identity errors of a document that does not verify.
 */
export async function fetchDocumentFrom(
  host: Pick<Libp2p, 'dialProtocol'>,
  peer: PeerId,
  account: string,
  options: { signal?: AbortSignal; logger?: P2pLogger } = {},
): Promise<AccountDocument> {
  if (!isServerName(account)) throw new InvalidAccountIdError(String(account).slice(0, 80));
  const signal =
    options.signal === undefined
      ? AbortSignal.timeout(DOCUMENT_FETCH_TIMEOUT)
      : AbortSignal.any([options.signal, AbortSignal.timeout(DOCUMENT_FETCH_TIMEOUT)]);
  const stream = await host.dialProtocol(peer, DOCUMENT_PROTOCOL, { signal, runOnLimitedConnection: true });
  let answer: unknown;
  try {
    const lp = lpStream(stream, { maxDataLength: DOCUMENT_MAX_FRAME_BYTES });
    await lp.write(new TextEncoder().encode(JSON.stringify({ account })), { signal });
    answer = parseJson((await lp.read({ signal })).subarray());
    await closeAfterAnswer(stream, signal, options.logger ?? silentLogger, peer);
  } catch (error) {
    stream.abort(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
  const document = (answer as { document?: unknown } | undefined)?.document;
  if (document === undefined)
    throw new DocumentUnavailableError(account, 'the peer holds none it may give to this node');
  return verifyAccountDocument(document, { expectedServerName: account });
}

// The answer is in: a close that fails costs nothing but the stream, which is aborted (and logged).
async function closeAfterAnswer(stream: Stream, signal: AbortSignal, log: P2pLogger, peer: PeerId): Promise<void> {
  try {
    await stream.close({ signal });
  } catch (error) {
    log.debug(
      { ...errorFields(error), peer: peer.toString(), protocol: DOCUMENT_PROTOCOL },
      'document stream close failed',
    );
    stream.abort(error instanceof Error ? error : new Error(String(error)));
  }
}

// Not JSON reads as no answer: the caller turns that into not_found or DocumentUnavailableError.
function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Offers a document to a peer (see the header). Resolves true when the peer now holds it in force, false when it
 * answered `not_found` (it does not host the account, or the document is older than its own).
 */
export async function offerDocumentTo(
  host: Pick<Libp2p, 'dialProtocol'>,
  peer: PeerId,
  document: AccountDocument,
  options: { signal?: AbortSignal; logger?: P2pLogger } = {},
): Promise<boolean> {
  const account = document.user_id.slice(document.user_id.indexOf(':') + 1);
  const signal =
    options.signal === undefined
      ? AbortSignal.timeout(DOCUMENT_FETCH_TIMEOUT)
      : AbortSignal.any([options.signal, AbortSignal.timeout(DOCUMENT_FETCH_TIMEOUT)]);
  const stream = await host.dialProtocol(peer, DOCUMENT_PROTOCOL, { signal, runOnLimitedConnection: true });
  try {
    const lp = lpStream(stream, { maxDataLength: DOCUMENT_MAX_FRAME_BYTES });
    await lp.write(new TextEncoder().encode(JSON.stringify({ account, document })), { signal });
    const answer = parseJson((await lp.read({ signal })).subarray());
    await closeAfterAnswer(stream, signal, options.logger ?? silentLogger, peer);
    return (answer as { accepted?: unknown } | undefined)?.accepted === true;
  } catch (error) {
    stream.abort(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}
