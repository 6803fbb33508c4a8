// failure and errors: how a microthread finished when it did not return, and the
// exceptions of the SDK.

/** A failure: how a microthread finished when it did not return. */
export function failureOf(f) {
  return Object.freeze({
    id: Number(f.id),
    name: f.name === undefined ? null : f.name,
    kind: f.kind,
    message: f.message,
  });
}

function describeFailure(f) {
  const who = f.name === null ? `microthread ${f.id}` : `microthread ${f.id} (${f.name})`;
  return `${who} failed (${f.kind}): ${f.message}`;
}

/** The base class of every error of this SDK. */
export class WeftError extends Error {
  constructor(message, value) {
    super(message);
    // A refused send or spawn gives its value back: its endpoints are live again.
    if (arguments.length > 1) this.value = value;
  }
}

/** The channel is closed: every receiver is gone (a send), or every sender is gone and its buffer is drained (a receive). */
export class Closed extends WeftError {}
/** `trySend`: the channel is full (on a rendezvous channel: no receiver waits). */
export class Full extends WeftError {}
/** `tryRecv`: nothing to receive now. */
export class Empty extends WeftError {}
/** The operation's timeout ran out. */
export class Timeout extends WeftError {}
/** This microthread was cancelled: every blocking call of it fails so, and its cleanup runs. */
export class Cancelled extends WeftError {}
/** The value is over the program's message size limit. */
export class TooLarge extends WeftError {}
/** A limit of the run was reached: its microthreads, or its channels; `.limit` is that maximum. */
export class LimitReached extends WeftError {
  constructor(message, limit, ...value) {
    super(message, ...value);
    this.limit = limit;
  }
}
/** A microthread failed: `.failure` says how (`kind`, `message`, `id`, `name`). */
export class Failed extends WeftError {
  constructor(failure, ...value) {
    super(describeFailure(failure), ...value);
    this.failure = failure;
  }
}
/** A network operation failed: `.kind` is the WIT's `net-error` case, or for an I/O error its `io-error-kind`. */
export class NetError extends WeftError {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.kind = kind;
  }
}

/**
 * A spawn on another node was refused: the node is not a live node of the cluster,
 * or it went down before it answered, or this program runs in no cluster (the
 * message says which).
 */
export class NoSuchNode extends WeftError {}

// Their names, which a bundler's renaming must not change.
for (const [name, c] of Object.entries({ WeftError, Closed, Full, Empty, Timeout, Cancelled, TooLarge, LimitReached, Failed, NetError, NoSuchNode })) {
  Object.defineProperty(c.prototype, 'name', { value: name, writable: true, configurable: true });
}
