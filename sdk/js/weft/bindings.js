// bindings: what the SDK's modules share about the generated bindings of the WIT
// imports (each module imports the WIT interfaces it calls). A call whose WIT result
// is an error throws the bindings' error, whose `payload` is the WIT error value.

const hasOwn = Object.prototype.hasOwnProperty;

// The bindings run in a realm of their own: their Uint8Arrays are not instances of
// this realm's. `ours` views the same bytes as one of ours.
export function ours(bytes) {
  return bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function isBytes(v) {
  return v instanceof Uint8Array || Object.prototype.toString.call(v) === '[object Uint8Array]';
}

/** Call `f`: `{ ok }` with its value, or `{ err }` with the WIT error it returned. */
export function attempt(f) {
  try {
    return { ok: f() };
  } catch (e) {
    if (e !== null && typeof e === 'object' && hasOwn.call(e, 'payload')) {
      return { err: e.payload, isErr: true };
    }
    throw e;
  }
}
