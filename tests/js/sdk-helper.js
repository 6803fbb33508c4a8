// A sibling module of tests/js/sdk.js: `weft build` bundles what the program imports.

export function double(n) {
  return 2 * n;
}

export function label(ok) {
  return ok ? 'id ok' : 'id wrong';
}
