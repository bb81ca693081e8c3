// The CLI's precompiled form: local/cli.ts and the hash thread's entry, bundled by esbuild into dist/ so
// `cldist` starts without transpiling anything. `npm ci` builds it (the `prepare` script runs this file);
// bin/cldist.js rebuilds it when a source is newer, and runs the sources through tsx when it cannot be
// built. The packages are bundled too, except dynalite, native add-ons and build tools, which load from
// node_modules exactly as they do from the sources (see `keptExternal`).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// One level below the root, as shared/ is: shared/config.ts finds keys/ at `..` from wherever it lands.
const outdir = join(root, 'dist');
const manifestPath = join(outdir, 'cldist.manifest.json');
const entryPath = join(outdir, 'cldist.mjs');
/** npm rewrites it on every install, update or removal of a package. */
const npmLockFile = join('node_modules', '.package-lock.json');

/**
 * Packages left in node_modules: dynalite (its thread loads it by path), native add-ons, and the build
 * tools. Every other package, fauxqs included, is bundled with the CLI's own modules: Node then reads and
 * parses a few chunks at start instead of hundreds of CommonJS files, each lexed for its exports, which
 * was most of the start-up time of a command.
 */
const keptExternal = new Set(['dynalite', 'fs-native-extensions', 'esbuild', 'tsx']);

function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const externalPackages = {
  name: 'cldist-external-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || isBuiltin(args.path) || keptExternal.has(packageName(args.path))) {
        return { path: args.path, external: true };
      }
      return undefined;
    });
  },
};

/**
 * zod's messages in English only. Its namespace export (`import { z } from 'zod'`, and `z.locales`) keeps
 * every one of its forty-odd translations reachable, most of zod's share of the bundle, which each command
 * that validates anything parsed at start; the CLI configures none of them (zod's default is `en`).
 */
const zodEnglishOnly = {
  name: 'cldist-zod-english-only',
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
      contents: 'export { default as en } from "./en.js";\n',
      loader: 'js',
    }));
  },
};

/** Bundled CommonJS packages `require` Node's modules; an ES module has no `require` of its own. */
const requireShim =
  "import { createRequire as cldistCreateRequire } from 'node:module'; const require = cldistCreateRequire(import.meta.url);";

/** The bundle's entry as a URL, or undefined when no bundle was ever built or a source changed since. */
export function freshEntry() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch {
    return undefined;
  }
  if (manifest.version !== 1 || !Array.isArray(manifest.inputs)) return undefined;
  if (typeof manifest.startedAt !== 'number') return undefined;
  try {
    for (const input of manifest.inputs) {
      if (statSync(join(root, input)).mtimeMs >= manifest.startedAt) return undefined;
    }
    statSync(entryPath);
  } catch {
    return undefined;
  }
  return pathToFileURL(entryPath).href;
}

/** Write then rename, so a process starting meanwhile sees the old file or the new one, never half. */
function writeAtomically(path, contents) {
  const temporary = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}

/**
 * Bundle the CLI into dist/. `clean` empties dist/ first (the `prepare` build); a rebuild at start leaves
 * older chunks in place, since a running `serve` may still import one of them lazily.
 */
export async function buildBundle({ clean = false } = {}) {
  const esbuild = await import('esbuild');
  // A source saved while the build runs must count as newer than the bundle.
  const startedAt = Date.now();
  if (clean) await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { cldist: 'local/cli.ts', 'hash-worker': 'shared/verify/hash-worker.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    plugins: [externalPackages, zodEnglishOnly],
    mainFields: ['module', 'main'],
    banner: { js: requireShim },
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunk-[hash]',
    sourcemap: 'linked',
    minify: true,
    keepNames: true,
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  // Chunks first, the entries and the manifest last: a reader never finds an entry whose chunks are missing.
  const entries = new Set([entryPath, join(outdir, 'hash-worker.mjs')]);
  const files = [...result.outputFiles].sort(
    (a, b) => Number(entries.has(a.path)) - Number(entries.has(b.path)),
  );
  for (const file of files) writeAtomically(file.path, file.contents);
  // Bundled packages change only through npm, which rewrites its lock file in node_modules: checking that
  // one file, not each of the thousand package files, keeps the start-up check to the repository's sources.
  const inputs = Object.keys(result.metafile.inputs)
    .map((input) => relative(root, join(root, input)))
    .filter((input) => !input.split(sep).includes('node_modules'));
  inputs.push(...[npmLockFile].filter((file) => existsSync(join(root, file))));
  writeAtomically(manifestPath, `${JSON.stringify({ version: 1, startedAt, inputs }, null, 2)}\n`);
  return pathToFileURL(entryPath).href;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await buildBundle({ clean: true });
  } catch (error) {
    // Without esbuild (an install without dev dependencies) the CLI still runs, from the sources via tsx.
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    process.stderr.write('cldist: esbuild is not installed; the CLI will run from its TypeScript sources\n');
  }
}
