// A weft program in JavaScript that uses `fetch` (wasi:http's outgoing
// requests), from main and from a spawned microthread, under the run's
// --connect grants: `weft run --connect HOST:PORT fetch.wasm URL`.

import * as weft from 'weft';

async function status(url) {
  try {
    const response = await fetch(url);
    return `${response.status} ${(await response.text()).trim()}`;
  } catch (e) {
    return `failed: ${e}`;
  }
}

const fetcher = weft.entry(async function fetcher(url) {
  return `spawned: ${await status(url)}`;
});

export async function main(args) {
  const url = args[0];
  console.log(`main: ${await status(url)}`);
  console.log(weft.spawn(fetcher, url).join());
}
