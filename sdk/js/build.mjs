// Build a weft guest from a JavaScript program:
//
//   node build.mjs <input.js> <output.wasm> <wit-dir>
//
// `weft build app.js -o app.wasm` runs it, with weft.js (the SDK, and its modules in
// weft/) beside it and the WIT of this weft. It bundles the program, what it imports, the SDK (imported as
// 'weft') and a wrapper that exports `wasi:cli/run` (calling the program's `main`)
// and `weft:runtime/entry` into one module, then makes a component of it with
// componentize-js against the WIT's `guest` world.
//
// componentize-js (@bytecodealliance/componentize-js, 0.23.0) is looked up, in
// order: in the npm prefix named by the environment variable WEFT_COMPONENTIZE_JS
// (the directory holding node_modules/@bytecodealliance/componentize-js), in
// node_modules of the input's directory and each directory above it, then in the
// global npm root (`npm root -g`). Exit codes: 0 built, 1 the program or the tool
// failed (the message says why), 2 bad usage or componentize-js missing.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const COMPONENTIZE_JS = '@bytecodealliance/componentize-js';
export const COMPONENTIZE_JS_VERSION = '0.23.0';

/** A failure with a message for the user and the exit code to end with. */
class BuildError extends Error {
  constructor(message, code = 1) {
    super(message);
    this.code = code;
  }
}

/** The package directory of componentize-js under the npm prefix or node_modules `dir`, if it has one. */
function packageIn(nodeModules) {
  const dir = join(nodeModules, ...COMPONENTIZE_JS.split('/'));
  return existsSync(join(dir, 'package.json')) ? dir : null;
}

/** The global npm root (`npm root -g`), or null if npm cannot say. */
function npmRoot(env) {
  const r = spawnSync('npm', ['root', '-g'], { encoding: 'utf8', env });
  if (r.error || r.status !== 0) return null;
  const root = r.stdout.trim();
  return root.length > 0 ? root : null;
}

/**
 * Where componentize-js is: its package directory, and where it was found; or
 * null, with the places looked in (`looked`).
 */
export function findComponentizeJs(input, env = process.env) {
  const looked = [];
  if (env.WEFT_COMPONENTIZE_JS) {
    const nm = join(resolve(env.WEFT_COMPONENTIZE_JS), 'node_modules');
    looked.push(`${nm} (WEFT_COMPONENTIZE_JS)`);
    const found = packageIn(nm);
    if (found) return { dir: found, looked };
  }
  for (let dir = dirname(resolve(input)); ; dir = dirname(dir)) {
    const nm = join(dir, 'node_modules');
    looked.push(nm);
    const found = packageIn(nm);
    if (found) return { dir: found, looked };
    if (dirname(dir) === dir) break;
  }
  const root = npmRoot(env);
  if (root) {
    looked.push(`${root} (npm root -g)`);
    const found = packageIn(root);
    if (found) return { dir: found, looked };
  } else {
    looked.push('the global npm root (npm root -g failed: is npm on the PATH?)');
  }
  return { dir: null, looked };
}

function missingComponentizeJs(looked) {
  return new BuildError(
    `weft build: ${COMPONENTIZE_JS} is not installed: install it with\n` +
      `    npm install ${COMPONENTIZE_JS}@${COMPONENTIZE_JS_VERSION}\n` +
      `(in the program's directory, or with -g), or set WEFT_COMPONENTIZE_JS to the npm prefix that holds it ` +
      `(the directory with node_modules/${COMPONENTIZE_JS}).\nLooked in:\n` +
      looked.map((l) => `    ${l}`).join('\n'),
    2,
  );
}

/** The wrapper module: the component's exports, calling the program through the SDK. */
function wrapperSource(input) {
  const program = JSON.stringify(resolve(input));
  return [
    `import * as program from ${program};`,
    `import { __runMain, __runEntry } from 'weft';`,
    `export const run = { run() { return __runMain(program.main); } };`,
    `export const entry = { run(trampoline, fn, argument) { return __runEntry(trampoline, fn, argument); } };`,
    '',
  ].join('\n');
}

const WRAPPER = '\0weft-wrapper.js';

/** Bundle the program, its imports and the SDK into one ES module: its source. */
async function bundle(input, sdk, componentizeDir) {
  // rolldown comes with componentize-js (through jco): resolve it from there.
  const require = createRequire(join(componentizeDir, 'package.json'));
  let rolldownPath;
  try {
    rolldownPath = require.resolve('rolldown');
  } catch (e) {
    throw new BuildError(
      `weft build: rolldown (which ${COMPONENTIZE_JS} installs with it) is not found beside ${componentizeDir}: ` +
        `reinstall ${COMPONENTIZE_JS}@${COMPONENTIZE_JS_VERSION} (${e.message})`,
    );
  }
  const { rolldown } = await import(pathToFileURL(rolldownPath).href);
  const programPath = resolve(input);
  let mainExported = null;
  const plugin = {
    name: 'weft',
    resolveId(id) {
      if (id === WRAPPER) return WRAPPER;
      if (id === 'weft') return sdk;
      if (/^(wasi|weft):/.test(id)) return { id, external: true };
      return null;
    },
    load(id) {
      return id === WRAPPER ? wrapperSource(input) : null;
    },
    moduleParsed(info) {
      if (info.id === programPath) mainExported = info.exports.includes('main');
    },
  };
  let build;
  try {
    build = await rolldown({
      input: WRAPPER,
      plugins: [plugin],
      platform: 'neutral',
      treeshake: false,
      logLevel: 'silent',
    });
  } catch (e) {
    throw new BuildError(`weft build: cannot build ${input}:\n${e.message}`);
  }
  try {
    // The modules are parsed as the bundle is generated. The map's sources are
    // absolute paths (see sourceNames).
    const { output } = await build.generate({
      format: 'esm',
      sourcemap: true,
      sourcemapPathTransform: (source, mapPath) => resolve(dirname(mapPath), source),
    });
    if (mainExported !== true) {
      throw new BuildError(
        `weft build: ${input} exports no function main: add\n    export function main(args) { ... }\n` +
          'to it (args: the arguments after the program, as strings)',
      );
    }
    return { code: output[0].code, map: output[0].map };
  } catch (e) {
    if (e instanceof BuildError) throw e;
    throw new BuildError(`weft build: cannot build ${input}:\n${e.message}`);
  } finally {
    await build.close();
  }
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * From a source map: for each line of the bundle, the file and line it came
 * from, as runs `[firstBundleLine, count, sourceIndex, firstSourceLine]`, so
 * that the SDK can show a failure's stack in the program's own lines.
 */
export function lineRuns(map) {
  const runs = [];
  let source = 0;
  let sourceLine = 0;
  map.mappings.split(';').forEach((segments, line) => {
    let first = null;
    for (const seg of segments.split(',')) {
      if (seg === '') continue;
      const fields = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const d = BASE64.indexOf(ch);
        value += (d & 31) << shift;
        if (d & 32) {
          shift += 5;
        } else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      if (fields.length >= 4) {
        source += fields[1];
        sourceLine += fields[2];
        if (first === null) first = [source, sourceLine];
      }
    }
    if (first === null) return;
    const last = runs[runs.length - 1];
    const bundleLine = line + 1;
    if (last && last[2] === first[0] && last[0] + last[1] === bundleLine && last[3] + last[1] === first[1] + 1) {
      last[1] += 1;
    } else {
      runs.push([bundleLine, 1, first[0], first[1] + 1]);
    }
  });
  return runs;
}

/**
 * The names a stack shows for the bundle's sources (absolute paths): the SDK's as
 * `weft.js` and `weft/MODULE.js` (the SDK leaves its own frames out by these
 * names), the program's files by their names.
 */
export function sourceNames(sources, sdkDir) {
  return sources.map((s) => (s.startsWith(sdkDir + sep) ? relative(sdkDir, s).split(sep).join('/') : basename(s)));
}

/** `text` with the bundle's `file:line[:column]` turned into the program's files and lines. */
export function mapLines(text, bundleName, sources, runs) {
  const escaped = bundleName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`${escaped}:(\\d+)(:\\d+)?`, 'g'), (whole, line) => {
    const n = Number(line);
    for (const [first, count, source, sourceLine] of runs) {
      if (n >= first && n < first + count) return `${sources[source]}:${sourceLine + (n - first)}`;
    }
    return whole;
  });
}

async function build(input, output, wit) {
  if (!existsSync(input) || !statSync(input).isFile()) {
    throw new BuildError(`weft build: ${input}: no such file`);
  }
  if (!existsSync(wit) || !statSync(wit).isDirectory()) {
    throw new BuildError(`weft build: the WIT directory ${wit} does not exist`, 2);
  }
  const sdkDir = realpathSync(dirname(fileURLToPath(import.meta.url)));
  const sdk = join(sdkDir, 'weft.js');
  if (!existsSync(sdk)) throw new BuildError(`weft build: the SDK ${sdk} is missing beside build.mjs`, 2);

  const { dir, looked } = findComponentizeJs(input);
  if (dir === null) throw missingComponentizeJs(looked);
  const version = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  if (version !== COMPONENTIZE_JS_VERSION) {
    console.error(
      `weft build: warning: ${COMPONENTIZE_JS} ${version} found in ${dir}; weft is tested with ${COMPONENTIZE_JS_VERSION}`,
    );
  }

  const { code, map } = await bundle(input, sdk, dir);
  // The bundle's lines, mapped back to the program's files (appended: it moves no line).
  const sources = sourceNames(map.sources, sdkDir);
  const runs = lineRuns(map);
  const lines = JSON.stringify({ sources, runs });
  const source = `${code}\nglobalThis[Symbol.for('weft.lines')] = ${lines};\n`;

  const { componentize } = await import(pathToFileURL(join(dir, 'src', 'componentize.js')).href);
  const work = mkdtempSync(join(tmpdir(), 'weft-build-'));
  const cwd = process.cwd();
  const name = basename(input).replace(/\.[cm]?js$/, '');
  try {
    const bundlePath = join(work, `${name}.bundle.js`);
    writeFileSync(bundlePath, source);
    // componentize-js maps the current directory into the engine if the source is
    // under it: work in the bundle's own directory, so that only it is seen.
    process.chdir(work);
    let result;
    try {
      result = await componentize({
        sourcePath: bundlePath,
        witPath: resolve(cwd, wit),
        worldName: 'guest',
      });
    } catch (e) {
      const message = mapLines(e.message, `${name}.bundle.js`, sources, runs);
      throw new BuildError(`weft build: componentize-js failed on ${input}:\n${message}`);
    }
    writeFileSync(resolve(cwd, output), result.component);
  } finally {
    process.chdir(cwd);
    rmSync(work, { recursive: true, force: true });
  }
}

const isScript = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isScript) {
  const args = process.argv.slice(2);
  if (args.length !== 3) {
    console.error('usage: node build.mjs <input.js> <output.wasm> <wit-dir>');
    process.exit(2);
  }
  try {
    await build(args[0], args[1], args[2]);
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(e.message);
      process.exit(e.code);
    }
    console.error(`weft build: ${e.stack || e}`);
    process.exit(1);
  }
}
