import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type CommandRun, median, runCommand as run } from './support.ts';

/**
 * Detached-signature verification of a file read from the page cache: `cldist verify` (the whole
 * command, Node start-up included) against `gpg --verify`, Sequoia's `sqv` and `sha512sum` (the hashing floor), on an RSA-4096 key
 * and a binary SHA-512 signature as upstream uses. Each child's peak RSS comes from GNU time.
 *
 *   npx tsx bench/verify.ts [--sizes 256,1024] [--rounds 5]
 */
const { values } = parseArgs({
  options: { sizes: { type: 'string', default: '256,1024' }, rounds: { type: 'string', default: '5' } },
});
const sizesMiB = values.sizes.split(',').map(Number);
const rounds = Number(values.rounds);
if (sizesMiB.some((n) => !Number.isInteger(n) || n <= 0) || !Number.isInteger(rounds) || rounds <= 0) {
  throw new Error('--sizes takes positive whole MiB counts separated by commas, --rounds a positive integer');
}

const MiB = 1024 * 1024;

async function must(command: string, args: string[]): Promise<CommandRun> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  }
  return result;
}

async function writeRandomFile(path: string, sizeMiB: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const block = new Uint8Array(8 * MiB);
    for (let written = 0; written < sizeMiB * MiB; written += block.byteLength) {
      randomFillSync(block);
      await handle.write(block, 0, Math.min(block.byteLength, sizeMiB * MiB - written));
    }
  } finally {
    await handle.close();
  }
}

interface Sample {
  seconds: number;
  peakKiB: number;
  /** cldist only: its own --stats figure, verification without process start-up. */
  innerMBps?: number;
}

/** Runs one tool under GNU time; the last stderr line is its peak RSS in KiB. */
async function timed(command: string, args: string[]): Promise<Sample & { stderr: string }> {
  const started = performance.now();
  const result = await run('/usr/bin/time', ['-f', '%M', command, ...args]);
  const seconds = (performance.now() - started) / 1000;
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  }
  const lines = result.stderr.trimEnd().split('\n');
  return { seconds, peakKiB: Number(lines.at(-1)), stderr: lines.slice(0, -1).join('\n') };
}

const dir = await mkdtemp(join(tmpdir(), 'cldist-bench-verify-'));
const home = join(dir, 'gnupg');
/** gpg on the benchmark's own keyring; `unattended` for the secret key, which has no passphrase. */
const gpg = (args: string[]) => must('gpg', ['--homedir', home, '--batch', ...args]);
const unattended = ['--pinentry-mode', 'loopback', '--passphrase', ''];
try {
  await must('mkdir', ['-m', '700', home]);
  process.stderr.write('generating an RSA-4096 key with gpg...\n');
  await gpg([
    ...unattended,
    '--quick-gen-key',
    'cldist bench <bench@cldist.invalid>',
    'rsa4096',
    'sign',
    'never',
  ]);
  const listing = await gpg(['--with-colons', '--list-keys']);
  const fpr = listing.stdout
    .split('\n')
    .find((line) => line.startsWith('fpr:'))
    ?.split(':')[9];
  if (fpr === undefined) {
    throw new Error('gpg made no key');
  }
  const armored = join(dir, 'pub.asc');
  const binary = join(dir, 'pub.gpg');
  await writeFile(armored, (await gpg(['--armor', '--export', fpr])).stdout);
  await gpg(['--output', binary, '--export', fpr]);

  const results: { sizeMiB: number; tool: string; samples: Sample[] }[] = [];
  for (const sizeMiB of sizesMiB) {
    const file = join(dir, `artifact-${sizeMiB}.bin`);
    const signature = `${file}.sig`;
    process.stderr.write(`writing ${sizeMiB} MiB of random bytes and signing them...\n`);
    await writeRandomFile(file, sizeMiB);
    await gpg([...unattended, '--digest-algo', 'SHA512', '--output', signature, '--detach-sign', file]);
    const tools: Record<string, () => Promise<Sample>> = {
      cldist: async () => {
        const sample = await timed(process.execPath, [
          'bin/cldist.js',
          'verify',
          file,
          '--keyring',
          armored,
          '--trust',
          fpr,
          '--stats',
        ]);
        const inner = /([\d.]+) MB\/s/.exec(sample.stderr)?.[1];
        return { ...sample, ...(inner === undefined ? {} : { innerMBps: Number(inner) }) };
      },
      gpg: () => timed('gpg', ['--homedir', home, '--batch', '--no-autostart', '--verify', signature, file]),
      sqv: () => timed('sqv', ['--keyring', binary, signature, file]),
      sha512sum: () => timed('sha512sum', [file]),
    };
    const samples: Record<string, Sample[]> = { cldist: [], gpg: [], sqv: [], sha512sum: [] };
    for (let round = 0; round < rounds; round++) {
      for (const [tool, measure] of Object.entries(tools)) {
        samples[tool]?.push(await measure());
      }
      process.stderr.write(`  ${sizeMiB} MiB round ${round + 1}/${rounds} done\n`);
    }
    for (const [tool, list] of Object.entries(samples)) {
      results.push({ sizeMiB, tool, samples: list });
    }
    await rm(file);
  }

  const mbps = (sizeMiB: number, seconds: number) => (sizeMiB * MiB) / 1e6 / seconds;
  console.log(
    `verify ${sizesMiB.join(', ')} MiB from the page cache, RSA-4096 + SHA-512, median of ${rounds}`,
  );
  console.log('size MiB | tool      | MB/s (whole run) | MB/s (verify only) | peak RSS MiB');
  for (const { sizeMiB, tool, samples } of results) {
    const whole = median(samples.map((s) => mbps(sizeMiB, s.seconds)));
    const inner = samples.every((s) => s.innerMBps !== undefined)
      ? median(samples.map((s) => s.innerMBps ?? 0)).toFixed(0)
      : '-';
    const peak = median(samples.map((s) => s.peakKiB / 1024));
    console.log(
      `${String(sizeMiB).padStart(8)} | ${tool.padEnd(9)} | ${whole.toFixed(0).padStart(16)} | ${inner.padStart(18)} | ${peak.toFixed(1).padStart(12)}`,
    );
  }
  for (const sizeMiB of sizesMiB) {
    const of = (tool: string) => results.find((r) => r.sizeMiB === sizeMiB && r.tool === tool)?.samples ?? [];
    const ratio = median(of('gpg').map((s) => s.seconds)) / median(of('cldist').map((s) => s.seconds));
    const innerRatio =
      median(of('cldist').map((s) => s.innerMBps ?? Number.NaN)) /
      median(of('gpg').map((s) => mbps(sizeMiB, s.seconds)));
    console.log(
      `${sizeMiB} MiB: cldist/gpg = ${ratio.toFixed(2)}x whole run, ${innerRatio.toFixed(2)}x verify only (target >= 1.5x on 1 GiB)`,
    );
  }
} finally {
  await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
  await rm(dir, { recursive: true, force: true });
}
