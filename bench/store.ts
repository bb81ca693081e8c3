import { randomFillSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { makeAwsClients } from '../shared/aws-clients.ts';
import { createLocalStore, type ObjectStore } from '../shared/store/index.ts';
import { createS3Store } from '../shared/store/s3-store.ts';
import { median, peakMiB, runCommand as run, startFauxqsProcess } from './support.ts';

/**
 * Staged-upload throughput of the two store adapters, bytes from memory in 1 MiB writes, then a streamed
 * read-back; beside `dd conv=fsync` into the same temp folder (the local peer) and the S3 adapter with
 * one part in flight (the concurrency peer). Each run is its own child process so its peak RSS (GNU time)
 * shows the bounded memory of partSize × (partsInFlight + 1). fauxqs runs in a process of its own.
 *
 *   npx tsx bench/store.ts [--size-mib 200] [--rounds 3] [--part-mib 8] [--in-flight 4]
 */
const MiB = 1024 * 1024;
const self = fileURLToPath(import.meta.url);

interface ChildInput {
  sizeMiB: number;
  partMiB: number;
  inFlight: number;
  store: { kind: 'local'; root: string } | { kind: 's3'; endpoint: string; bucket: string };
}

interface ChildOutput {
  writeSeconds: number;
  readSeconds: number;
  bytes: number;
}

async function child(input: ChildInput): Promise<void> {
  const store: ObjectStore =
    input.store.kind === 'local'
      ? createLocalStore(input.store.root)
      : createS3Store(makeAwsClients({ s3: input.store.endpoint }).s3, {
          bucket: input.store.bucket,
          partSizeBytes: input.partMiB * MiB,
          partsInFlight: input.inFlight,
        });
  const chunk = randomFillSync(Buffer.alloc(MiB));
  const key = `bench/${process.pid}/image.bin`;
  const started = performance.now();
  const upload = await store.beginUpload(key);
  for (let i = 0; i < input.sizeMiB; i++) await upload.write(chunk);
  await upload.commit();
  const written = performance.now();
  const stream = await store.getStream(key);
  let bytes = 0;
  for await (const part of stream?.body ?? []) bytes += part.byteLength;
  const read = performance.now();
  await store.delete(key);
  if (bytes !== input.sizeMiB * MiB)
    throw new Error(`read back ${bytes} bytes, wrote ${input.sizeMiB * MiB}`);
  const output: ChildOutput = {
    writeSeconds: (written - started) / 1000,
    readSeconds: (read - written) / 1000,
    bytes,
  };
  console.log(JSON.stringify(output));
}

interface Row {
  label: string;
  write: number[];
  read: number[];
  rss: number[];
}

async function parent(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
      'part-mib': { type: 'string', default: '8' },
      'in-flight': { type: 'string', default: '4' },
    },
  });
  const sizeMiB = Number(values['size-mib']);
  const rounds = Number(values.rounds);
  const partMiB = Number(values['part-mib']);
  const inFlight = Number(values['in-flight']);
  if ([sizeMiB, rounds, partMiB, inFlight].some((n) => !Number.isInteger(n) || n <= 0) || partMiB < 5) {
    throw new Error('--size-mib, --rounds, --in-flight take positive integers; --part-mib an integer >= 5');
  }
  const work = await mkdtemp(join(tmpdir(), 'cldist-bench-store-'));
  const fauxqs = await startFauxqsProcess();
  try {
    const bucket = 'bench-store';
    await makeAwsClients({ s3: fauxqs.endpoint }).s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const s3 = { kind: 's3' as const, endpoint: fauxqs.endpoint, bucket };
    const cases: Array<{ label: string; input: ChildInput }> = [
      {
        label: `S3 adapter → fauxqs, ${partMiB} MiB parts × ${inFlight}`,
        input: { sizeMiB, partMiB, inFlight, store: s3 },
      },
      {
        label: `S3 adapter → fauxqs, ${partMiB} MiB parts × 1`,
        input: { sizeMiB, partMiB, inFlight: 1, store: s3 },
      },
      {
        label: 'local adapter → temp folder',
        input: { sizeMiB, partMiB, inFlight, store: { kind: 'local', root: join(work, 'local') } },
      },
    ];
    const rows: Row[] = [];
    for (const { label, input } of cases) {
      const row: Row = { label, write: [], read: [], rss: [] };
      rows.push(row);
      for (let round = 0; round < rounds; round++) {
        const result = await run('/usr/bin/time', [
          '-f',
          '%M',
          process.execPath,
          '--import',
          'tsx',
          self,
          '--child',
          JSON.stringify(input),
        ]);
        if (result.code !== 0) throw new Error(`store child failed: ${result.stderr}`);
        const output = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as ChildOutput;
        row.write.push(output.bytes / 1e6 / output.writeSeconds);
        row.read.push(output.bytes / 1e6 / output.readSeconds);
        row.rss.push(peakMiB(result.stderr));
      }
    }
    const ddRow: Row = { label: 'dd bs=1M conv=fsync → temp folder', write: [], read: [], rss: [] };
    rows.push(ddRow);
    for (let round = 0; round < rounds; round++) {
      const target = join(work, 'dd.bin');
      const started = performance.now();
      const result = await run('/usr/bin/time', [
        '-f',
        '%M',
        'dd',
        'if=/dev/zero',
        `of=${target}`,
        'bs=1M',
        `count=${sizeMiB}`,
        'conv=fsync',
        'status=none',
      ]);
      const seconds = (performance.now() - started) / 1000;
      if (result.code !== 0) throw new Error(`dd failed: ${result.stderr}`);
      ddRow.write.push((sizeMiB * MiB) / 1e6 / seconds);
      ddRow.rss.push(peakMiB(result.stderr));
      await rm(target, { force: true });
    }

    console.log(
      `\nstore benchmark: ${sizeMiB} MiB from memory in 1 MiB writes, ${rounds} round(s), Node ${process.version}`,
    );
    console.log(
      'case'.padEnd(44),
      'write MB/s'.padStart(11),
      'read MB/s'.padStart(10),
      'peak RSS MiB'.padStart(13),
    );
    for (const row of rows) {
      console.log(
        row.label.padEnd(44),
        median(row.write).toFixed(0).padStart(11),
        (row.read.length === 0 ? '–' : median(row.read).toFixed(0)).padStart(10),
        Math.max(...row.rss)
          .toFixed(0)
          .padStart(13),
      );
    }
    const [parallel, serial, local] = rows;
    if (parallel !== undefined && serial !== undefined && local !== undefined) {
      console.log(
        `\nS3 ${inFlight} in flight / 1 in flight: ${(median(parallel.write) / median(serial.write)).toFixed(2)}×;` +
          ` local / dd: ${(median(local.write) / median(ddRow.write)).toFixed(2)}×  (medians of write MB/s)`,
      );
    }
  } finally {
    fauxqs.process.kill();
    await rm(work, { recursive: true, force: true });
  }
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  await child(JSON.parse(process.argv[childIndex + 1] ?? '{}') as ChildInput);
} else {
  await parent();
}
