/** Thrown when a home target is neither a multiaddr ending in /p2p/<PeerId> nor (where allowed) a bare PeerId. */
export class HomeAddressError extends Error {
  constructor(
    readonly reason: 'not_multiaddr' | 'no_peer_id' | 'not_peer_id' | 'server_needs_address',
    readonly target: string,
  ) {
    super(`${target}: ${reason}`);
    this.name = 'HomeAddressError';
  }
}

/** Thrown when a home is asked to revoke itself from an account document. */
export class SelfRevocationError extends Error {
  constructor(readonly peerId: string) {
    super(`This home (${peerId}) cannot revoke itself.`);
    this.name = 'SelfRevocationError';
  }
}

/** Thrown when the account is not held here (no document in force). */
export class AccountNotHeldError extends Error {
  constructor(readonly account: string) {
    super(`The account ${account} has no document here.`);
    this.name = 'AccountNotHeldError';
  }
}

/** Thrown by announce when the home has no connection to put the records on (the queue retries later). */
export class NotConnectedError extends Error {
  constructor() {
    super('No peer connected: nothing to announce to.');
    this.name = 'NotConnectedError';
  }
}

/** The reason DHT work is aborted with when the home stops (the announcement runs again on the next start). */
export class HomeStoppingError extends Error {
  constructor() {
    super('The home is stopping: the announcement is left for the next start.');
    this.name = 'HomeStoppingError';
  }
}

/** Thrown when a pairing code given to add a home is not one (10 characters of Crockford base32). */
export class InvalidPairingCodeError extends Error {
  constructor() {
    super(
      'The pairing code is not one: it is 10 letters and digits, as the joining node printed it (e.g. 7KQ2M-XW4PD).',
    );
    this.name = 'InvalidPairingCodeError';
  }
}
