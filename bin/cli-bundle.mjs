// The CLI's precompiled form: local/cli.ts and the hash thread's entry, bundled by esbuild into dist/ so
// `cldist` starts without transpiling anything. `npm ci` builds it (the `prepare` script runs this file);
// bin/cldist.js rebuilds it when a source is newer, and runs the sources through tsx when it cannot be
// built. Packages stay in node_modules (`packages: 'external'`): only this repository's own
// modules are bundled, so native add-ons and the stand-ins load exactly as they do from the sources.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// One level below the root, as shared/ is: shared/config.ts finds keys/ at `..` from wherever it lands.
const outdir = join(root, 'dist');
const manifestPath = join(outdir, 'cldist.manifest.json');
const entryPath = join(outdir, 'cldist.mjs');

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
    packages: 'external',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunk-[hash]',
    sourcemap: 'linked',
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
  const inputs = Object.keys(result.metafile.inputs).map((input) => relative(root, join(root, input)));
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
