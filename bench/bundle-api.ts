import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { projectRoot } from '../shared/config.ts';

/**
 * Size and cold module-load time of the API Lambda bundle (functions/api/handler.ts, minified, ESM, for
 * nodejs22.x), with every dependency bundled, the AWS SDK included (the worst case: nothing taken from the
 * runtime). Load time is measured in a fresh Node process per round, against the peer of a fresh process
 * importing an empty module, so process start-up is not counted twice.
 *
 *   node --import tsx bench/bundle-api.ts [rounds=7]
 */
const rounds = Number(process.argv[2] ?? 7);
const run = promisify(execFile);

const dir = await mkdtemp(join(tmpdir(), 'cldist-bundle-api-'));
try {
  const outfile = join(dir, 'handler.mjs');
  const empty = join(dir, 'empty.mjs');
  await build({
    entryPoints: [join(projectRoot, 'functions/api/handler.ts')],
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    outfile,
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'error',
  });
  await build({ stdin: { contents: 'export {};' }, outfile: empty, format: 'esm', logLevel: 'error' });
  const size = (await stat(outfile)).size;

  const env = {
    ...process.env,
    CLDIST_CONFIG: '{}',
    CLDIST_RESOURCES: JSON.stringify({ tableName: 'cldist-ledger', configBucket: 'cldist-configs' }),
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
  };
  const probe = (file: string) =>
    `const t = performance.now(); const m = await import(${JSON.stringify(file)}); ` +
    `if (${JSON.stringify(file)}.endsWith('handler.mjs') && typeof m.handler !== 'function') throw new Error('no handler'); ` +
    'process.stdout.write(String(performance.now() - t));';
  const loadMs = async (file: string) => {
    const { stdout } = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', probe(file)], { env });
    return Number(stdout);
  };
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  };
  const handlerTimes: number[] = [];
  const emptyTimes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    handlerTimes.push(await loadMs(outfile));
    emptyTimes.push(await loadMs(empty));
  }
  const handlerMs = median(handlerTimes);
  const emptyMs = median(emptyTimes);
  process.stdout.write(
    `bundle functions/api/handler.ts (esbuild, minified, esm, node22): ${(size / 1_000_000).toFixed(3)} MB (${size} bytes); target <= 1 MB: ${size <= 1_000_000 ? 'met' : 'MISSED'}\n` +
      `cold import, median of ${rounds} fresh processes: handler ${handlerMs.toFixed(1)} ms, peer empty module ${emptyMs.toFixed(1)} ms, ` +
      `difference ${(handlerMs - emptyMs).toFixed(1)} ms; target <= 250 ms: ${handlerMs <= 250 ? 'met' : 'MISSED'}\n`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
