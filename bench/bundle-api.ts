import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { projectRoot } from '../shared/config.ts';
import { median } from './support.ts';

/**
 * Size and cold module-load time of the API Lambda bundle (functions/api/handler.ts, esbuild, minified, ESM,
 * node22), in two shapes: everything bundled (but `bowser`, which only the SDK's browser code imports), and `@aws-sdk/*` left external because the nodejs22.x runtime
 * provides SDK v3 (the usual NodejsFunction setting). Load time is the `import()` of the bundle in a fresh
 * Node process, median of N rounds, against the peer of a fresh process importing an empty module. The
 * bundles are written under node_modules/ so the external SDK resolves from the project, as it would from
 * the runtime's own node_modules.
 *
 *   node --import tsx bench/bundle-api.ts [rounds=7]
 */
const rounds = Number(process.argv[2] ?? 7);
const run = promisify(execFile);

const env = {
  ...process.env,
  CLDIST_CONFIG: '{}',
  CLDIST_RESOURCES: JSON.stringify({ tableName: 'cldist-ledger', configBucket: 'cldist-configs' }),
  AWS_REGION: 'us-east-1',
  AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
};

async function loadMs(file: string, expectHandler: boolean): Promise<number> {
  const probe =
    `const t = performance.now(); const m = await import(${JSON.stringify(file)}); ` +
    `if (${expectHandler} && typeof m.handler !== 'function') throw new Error('no handler export'); ` +
    'process.stdout.write(String(performance.now() - t));';
  const { stdout } = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', probe], {
    env,
  });
  return Number(stdout);
}

async function bundle(outfile: string, external: string[]): Promise<number> {
  await build({
    entryPoints: [join(projectRoot, 'functions/api/handler.ts')],
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    external,
    outfile,
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    logLevel: 'error',
  });
  return (await stat(outfile)).size;
}

await mkdir(join(projectRoot, 'node_modules/.cache'), { recursive: true });
const dir = await mkdtemp(join(projectRoot, 'node_modules/.cache/cldist-bundle-api-'));
try {
  const empty = join(dir, 'empty.mjs');
  await build({ stdin: { contents: 'export {};' }, outfile: empty, format: 'esm', logLevel: 'error' });
  const shapes = [
    // bowser is reached only through a dynamic import on the SDK's browser user-agent path, never on Node.
    { name: 'everything bundled', file: join(dir, 'full.mjs'), external: ['bowser'] },
    { name: '@aws-sdk/* from the runtime', file: join(dir, 'sdk-external.mjs'), external: ['@aws-sdk/*'] },
  ];
  const sizes = new Map<string, number>();
  for (const shape of shapes) sizes.set(shape.name, await bundle(shape.file, shape.external));
  const times = new Map<string, number[]>(shapes.map((s) => [s.name, []]));
  const emptyTimes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const shape of shapes) times.get(shape.name)?.push(await loadMs(shape.file, true));
    emptyTimes.push(await loadMs(empty, false));
  }
  const peer = median(emptyTimes);
  process.stdout.write(
    `esbuild functions/api/handler.ts --bundle --minify --format=esm --platform=node --target=node22\n`,
  );
  for (const shape of shapes) {
    const size = sizes.get(shape.name) ?? 0;
    const ms = median(times.get(shape.name) ?? []);
    process.stdout.write(
      `${shape.name.padEnd(30)} ${(size / 1_000_000).toFixed(3)} MB (<= 1 MB: ${size <= 1_000_000 ? 'met' : 'MISSED'})   ` +
        `cold import median ${ms.toFixed(1)} ms (<= 250 ms: ${ms <= 250 ? 'met' : 'MISSED'})\n`,
    );
  }
  process.stdout.write(
    `peer: fresh process importing an empty module, median ${peer.toFixed(1)} ms (${rounds} rounds)\n`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
