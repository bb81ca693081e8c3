import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { build } from 'esbuild';
import { startSimOrigin } from '../local/sim-origin/sim-origin.ts';
import { makeAwsClients } from '../shared/aws-clients.ts';
import { parseConfig, projectRoot } from '../shared/config.ts';
import { silentLogger } from '../shared/mirror/deps.ts';
import { createMirrorRuntime } from '../shared/mirror/runtime.ts';
import { transferArtifact } from '../shared/mirror/worker.ts';
import { artifactUrls } from '../shared/release/layout.ts';
import { median, peakMiB, runCommand as run, startFauxqsProcess } from './support.ts';

/**
 * The mirror's data path end to end: an RSA-4096-signed artifact from the sim origin over loopback,
 * through signature verification, SHA-512 and a staged upload, into a local folder (or S3 on fauxqs),
 * beside `gpg --verify` and Sequoia's `sqv` on the same file in the same run, with `sha512sum` as the
 * hashing floor. Rounds alternate cldist and the peers, so a change of load on this shared machine hits all
 * of them; the ratio printed is the median of the per-round ratios. Every measurement is its own child process, so
 * each peak RSS (GNU time) belongs to one run; the child runs this file bundled by esbuild, as a Lambda
 * runs its handler, so the TypeScript loader's memory is not counted.
 *
 *   npx tsx bench/transfer.ts [--size-mib 1024] [--rounds 5] [--store local|s3|both] [--sizes 64,256] [--json FILE]
 *
 * `--sizes` replaces the default sizes (256 and `--size-mib`); `--json` also writes every round's figures to FILE
 * (bench/plot.ts reads it).
 *
 * CLDIST_BENCH_PROF=DIR writes a V8 CPU profile of each transfer child into DIR.
 */
const MiB = 1024 * 1024;
const self = fileURLToPath(import.meta.url);
const board = 'amd64-usr';

interface ChildInput {
  baseUrl: string;
  version: string;
  keyFile: string;
  trusted: string;
  store: { kind: 'local'; root: string } | { kind: 's3'; endpoint: string; bucket: string };
}

interface ChildOutput {
  bytes: number;
  seconds: number;
  resumes: number;
}

async function child(input: ChildInput): Promise<void> {
  const config = parseConfig({
    channels: [{ name: 'bench', baseUrl: input.baseUrl }],
    boards: [board],
    artifacts: [{ name: 'image.bin' }],
    limits: { maxArtifactBytes: 64 * 1024 * MiB, requestTimeoutSeconds: 120 },
    keyring: { files: [input.keyFile], trustedFingerprints: [input.trusted] },
    store:
      input.store.kind === 'local'
        ? { kind: 'local', path: input.store.root }
        : { kind: 's3', bucket: input.store.bucket, prefix: '' },
  });
  const [source] = config.sources;
  const channel = source?.channels[0];
  if (source === undefined || channel === undefined) throw new Error('no channel');
  // The mirror's own assembly (store, signature checker); the ledger it builds is never called here.
  const { deps } = await createMirrorRuntime({
    config,
    resources: { tableName: 'bench-unused' },
    clients: makeAwsClients(input.store.kind === 's3' ? { s3: input.store.endpoint } : {}),
    logger: silentLogger,
  });
  const job = {
    v: 1 as const,
    source: source.name,
    channel: 'bench',
    board,
    version: input.version,
    artifact: 'image.bin',
    ...artifactUrls(source, channel, board, input.version, 'image.bin'),
  };
  const started = performance.now();
  const facts = await transferArtifact(job, deps, config);
  const output: ChildOutput = {
    bytes: facts.size,
    seconds: (performance.now() - started) / 1000,
    resumes: facts.resumes,
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

const peerLabels = [
  ['gpg', 'gpg --verify (file in page cache)'],
  ['sqv', 'sqv (file in page cache)'],
  ['sha512sum', 'sha512sum (hashing floor, no verify)'],
] as const;

interface Row {
  label: string;
  sizeMiB: number;
  mbps: number[];
  rss: number[];
}

async function parent(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '1024' },
      rounds: { type: 'string', default: '5' },
      store: { type: 'string', default: 'local' },
      sizes: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const largest = Number(values['size-mib']);
  const rounds = Number(values.rounds);
  const stores = values.store === 'both' ? ['local', 's3'] : [values.store];
  if (!Number.isInteger(largest) || largest <= 0 || !Number.isInteger(rounds) || rounds <= 0) {
    throw new Error('--size-mib and --rounds take positive integers');
  }
  if (stores.some((s) => s !== 'local' && s !== 's3')) throw new Error('--store is local, s3 or both');
  const sizes =
    values.sizes === undefined
      ? [...new Set([Math.min(256, largest), largest])]
      : [...new Set(values.sizes.split(',').map(Number))];
  if (sizes.some((size) => !Number.isInteger(size) || size <= 0)) {
    throw new Error(`--sizes takes comma-separated positive integers (MiB), got ${values.sizes}`);
  }

  const work = await mkdtemp(join(tmpdir(), 'cldist-bench-transfer-'));
  /** Under node_modules so the bundle's external packages resolve as the project's own. */
  const bundleDir = join(projectRoot, 'node_modules', '.cache', 'cldist-bench');
  const bundle = join(bundleDir, 'transfer.mjs');
  // The hash thread's entry is written beside the bundle, as the Lambda and CLI builds do.
  await build({
    entryPoints: {
      transfer: self,
      'hash-worker': join(projectRoot, 'shared', 'verify', 'hash-worker.ts'),
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: bundleDir,
    outExtension: { '.js': '.mjs' },
    logLevel: 'error',
    packages: 'external',
  });
  const origin = await startSimOrigin({ keyType: 'rsa4096' });
  let fauxqs: Awaited<ReturnType<typeof startFauxqsProcess>> | undefined;
  try {
    const keyFile = join(work, 'key.asc');
    await writeFile(keyFile, origin.publicKeyArmored);
    const gnupg = join(work, 'gnupg');
    await run('mkdir', ['-m', '700', gnupg]);
    const imported = await run('gpg', ['--homedir', gnupg, '--batch', '--import', keyFile]);
    if (imported.code !== 0) throw new Error(`gpg --import failed: ${imported.stderr}`);
    const binaryKey = join(work, 'key.pgp');
    const exported = await run('gpg', ['--homedir', gnupg, '--batch', '--output', binaryKey, '--export']);
    if (exported.code !== 0) throw new Error(`gpg --export failed: ${exported.stderr}`);
    for (const size of sizes) {
      process.stderr.write(`publishing ${size} MiB (RSA-4096 signature)…\n`);
      await origin.publishRelease({
        channel: 'bench',
        board,
        version: `1.0.${size}`,
        artifacts: [{ name: 'image.bin', size: size * MiB }],
      });
    }
    let bucket = '';
    if (stores.includes('s3')) {
      fauxqs = await startFauxqsProcess();
      bucket = 'bench-transfer';
      await makeAwsClients({ s3: fauxqs.endpoint }).s3.send(new CreateBucketCommand({ Bucket: bucket }));
    }

    const rows: Row[] = [];
    /** cldist (local folder) over gpg, round by round: each pair ran back to back under the same load. */
    const ratios = new Map<number, number[]>();
    for (const size of sizes) {
      const version = `1.0.${size}`;
      const ours = new Map<string, Row>();
      for (const kind of stores) {
        const row: Row = {
          label: `cldist mirror → ${kind === 'local' ? 'local folder' : 'S3 (fauxqs)'}`,
          sizeMiB: size,
          mbps: [],
          rss: [],
        };
        ours.set(kind, row);
        rows.push(row);
      }
      const peerRows = new Map<string, Row>();
      if (stores.includes('local')) {
        for (const [name, label] of peerLabels) {
          const row: Row = { label, sizeMiB: size, mbps: [], rss: [] };
          peerRows.set(name, row);
          rows.push(row);
        }
      }
      const firstStore = join(work, `store-${size}-0`);
      for (let round = 0; round < rounds; round++) {
        for (const kind of stores) {
          const row = ours.get(kind) as Row;
          const root = join(work, `store-${size}-${round}`);
          const input: ChildInput = {
            baseUrl: origin.baseUrl,
            version,
            keyFile,
            trusted: origin.primaryFingerprint,
            store:
              kind === 'local'
                ? { kind: 'local', root }
                : { kind: 's3', endpoint: fauxqs?.endpoint ?? '', bucket },
          };
          const result = await run('/usr/bin/time', [
            '-f',
            '%M',
            process.execPath,
            ...(process.env.CLDIST_BENCH_PROF
              ? ['--cpu-prof', '--cpu-prof-dir', process.env.CLDIST_BENCH_PROF]
              : []),
            bundle,
            '--child',
            JSON.stringify(input),
          ]);
          if (result.code !== 0) throw new Error(`transfer child failed: ${result.stderr}`);
          const output = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as ChildOutput;
          row.mbps.push(output.bytes / 1e6 / output.seconds);
          row.rss.push(peakMiB(result.stderr));
          if (kind === 'local' && round > 0) await rm(root, { recursive: true, force: true });
        }
        if (!stores.includes('local')) continue;
        const file = join(firstStore, 'bench', board, version, 'image.bin');
        const commands: Record<string, string[]> = {
          gpg: ['gpg', '--homedir', gnupg, '--batch', '--verify', `${file}.sig`, file],
          sqv: ['sqv', '--keyring', binaryKey, `${file}.sig`, file],
          sha512sum: ['sha512sum', file],
        };
        for (const [name, row] of peerRows) {
          const result = await run('/usr/bin/time', ['-f', '%M', ...(commands[name] ?? [])]);
          if (result.code !== 0) throw new Error(`${name} failed: ${result.stderr}`);
          row.mbps.push((size * MiB) / 1e6 / result.seconds);
          row.rss.push(peakMiB(result.stderr));
        }
        const local = ours.get('local')?.mbps.at(-1);
        const gpg = peerRows.get('gpg')?.mbps.at(-1);
        if (local !== undefined && gpg !== undefined) {
          ratios.set(size, [...(ratios.get(size) ?? []), local / gpg]);
        }
      }
    }

    console.log(
      `\ntransfer benchmark: ${rounds} round(s), sizes ${sizes.join(', ')} MiB, Node ${process.version}`,
    );
    console.log(
      'tool'.padEnd(40),
      'MiB'.padStart(6),
      'median MB/s'.padStart(12),
      'peak RSS MiB (max)'.padStart(19),
    );
    for (const row of rows) {
      console.log(
        row.label.padEnd(40),
        String(row.sizeMiB).padStart(6),
        median(row.mbps).toFixed(0).padStart(12),
        Math.max(...row.rss)
          .toFixed(0)
          .padStart(19),
      );
    }
    for (const [size, list] of ratios) {
      console.log(
        `${size} MiB: cldist / gpg = ${median(list).toFixed(2)}× (median of per-round ratios: ${list.map((r) => r.toFixed(2)).join(', ')})`,
      );
    }
    if (values.json !== undefined) {
      await writeFile(
        values.json,
        `${JSON.stringify({ node: process.version, rounds, rows, ratios: Object.fromEntries(ratios) }, null, 2)}\n`,
      );
    }
  } finally {
    fauxqs?.process.kill();
    await origin.close();
    await rm(work, { recursive: true, force: true });
    await rm(bundle, { force: true });
  }
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  await child(JSON.parse(process.argv[childIndex + 1] ?? '{}') as ChildInput);
} else {
  await parent();
}
