// time: milliseconds (JavaScript's unit) to the nanoseconds every WIT timeout,
// sleep and timer takes.

export function nanos(ms, what) {
  if (typeof ms !== 'number' || !(ms >= 0) || ms === Infinity) {
    throw new TypeError(`${what}: a duration is a finite number of milliseconds, at least 0 (got ${String(ms)})`);
  }
  return BigInt(Math.round(ms * 1e6));
}

/** The timeout of `options` in nanoseconds, or undefined for none. */
export function timeoutOf(options, what) {
  if (options === undefined || options === null || options.timeout === undefined || options.timeout === null) {
    return undefined;
  }
  if (options.timeout === Infinity) return undefined;
  return nanos(options.timeout, what);
}
