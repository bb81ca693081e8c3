import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { CrauStreamReader } from '../shared/update/crau-reader.ts';
import { parseUpdatePayloadKey, verifyCrauSignatures } from '../shared/update/crau-verify.ts';
import { buildCrauPayload, testPayloadKey } from '../test/support/crau-generator.ts';
import { median } from './support.ts';

/**
 * The update payload check of one file read from the page cache, in this process: the CrAU reader
 * (SHA-1, SHA-256 and the signed hash in one pass, then the RSA check) against the same two hashes done
 * by Node alone (the floor of that pass), and against `sha1sum` then `sha256sum` (two passes, in C).
 *
 *   npx tsx bench/crau.ts [--size 256] [--rounds 5]
 */
const { values } = parseArgs({
  options: { size: { type: 'string', default: '256' }, rounds: { type: 'string', default: '5' } },
});
const sizeMiB = Number(values.size);
const rounds = Number(values.rounds);
if (!Number.isInteger(sizeMiB) || sizeMiB <= 0 || !Number.isInteger(rounds) || rounds <= 0) {
  throw new Error('--size takes a positive whole MiB count, --rounds a positive integer');
}
const MiB = 1024 * 1024;

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: MiB }, (error) => (error === null ? resolve() : reject(error)));
  });
}

async function timed(what: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await what();
  return performance.now() - start;
}

const folder = await mkdtemp(join(tmpdir(), 'cldist-bench-crau-'));
try {
  const pair = testPayloadKey();
  const key = parseUpdatePayloadKey(pair.publicPem, 'bench key', 'bench');
  const path = join(folder, 'flatcar_production_update.gz');
  await writeFile(path, buildCrauPayload({ signers: [pair.privateKey], data: sizeMiB * MiB }).bytes);
  const stream = () => createReadStream(path, { highWaterMark: MiB });

  const reader = async () => {
    const crau = new CrauStreamReader();
    for await (const chunk of stream()) crau.update(chunk as Buffer);
    verifyCrauSignatures(crau.finish(), [key]);
  };
  const nodeHashes = async () => {
    const sha1 = createHash('sha1');
    const sha256 = createHash('sha256');
    for await (const chunk of stream()) {
      sha1.update(chunk as Buffer);
      sha256.update(chunk as Buffer);
    }
    return [sha1.digest(), sha256.digest()];
  };
  const coreutils = async () => {
    await run('sha1sum', [path]);
    await run('sha256sum', [path]);
  };
  const results = { reader: [] as number[], nodeHashes: [] as number[], coreutils: [] as number[] };
  await reader();
  for (let round = 0; round < rounds; round++) {
    results.reader.push(await timed(reader));
    results.nodeHashes.push(await timed(nodeHashes));
    results.coreutils.push(await timed(coreutils));
  }
  const m = {
    reader: median(results.reader),
    nodeHashes: median(results.nodeHashes),
    coreutils: median(results.coreutils),
  };
  const rate = (ms: number) => `${((sizeMiB / ms) * 1000).toFixed(0)} MiB/s`;
  process.stdout.write(
    [
      `update payload of ${sizeMiB} MiB from the page cache, median of ${rounds} rounds:`,
      `  CrAU reader + RSA check:      ${m.reader.toFixed(0)} ms (${rate(m.reader)})`,
      `  Node SHA-1 + SHA-256 only:    ${m.nodeHashes.toFixed(0)} ms (${rate(m.nodeHashes)}), reader/this = ${(m.reader / m.nodeHashes).toFixed(2)}`,
      `  sha1sum then sha256sum:       ${m.coreutils.toFixed(0)} ms (${rate(m.coreutils)}), reader/this = ${(m.reader / m.coreutils).toFixed(2)}`,
      '',
    ].join('\n'),
  );
} finally {
  await rm(folder, { recursive: true, force: true });
}
