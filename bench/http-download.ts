import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import * as openpgp from 'openpgp';
import { fetchSmall, streamDownload } from '../shared/http/fetch.ts';
import { median } from './support.ts';

/**
 * Throughput of streamDownload over loopback from a sim origin in its own process, with socket data gathered
 * into 1 MiB chunks or passed on as the socket delivers it, drained alone or through openpgp.js streaming
 * verification; curl and undici fetch are the peers.
 *
 *   node --import tsx bench/http-download.ts [MiB=512] [rounds=3]
 */
const sizeMiB = Number(process.argv[2] ?? 512);
const rounds = Number(process.argv[3] ?? 3);
const size = sizeMiB * 1024 * 1024;
const run = promisify(execFile);

interface OriginInfo {
  releaseUrl: string;
  url: string;
  publicKeyArmored: string;
}

async function startOrigin(): Promise<{ child: ChildProcess; info: OriginInfo }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'local/sim-origin/main.ts', '--artifact', `image.bin=${size}`],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  if (!child.stdout) {
    throw new Error('no stdout from the sim origin');
  }
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    return { child, info: JSON.parse(line) as OriginInfo };
  }
  throw new Error('the sim origin exited before printing its address');
}

const { child, info } = await startOrigin();
const url = `${info.releaseUrl}/image.bin`;
const publicKey = await openpgp.readKey({ armoredKey: info.publicKeyArmored });
const signatureBytes = await fetchSmall(`${url}.sig`, { maxBytes: 65536, timeoutMs: 10_000 });

async function download(chunkSize: number): Promise<AsyncIterable<Uint8Array>> {
  const result = await streamDownload(url, { maxBytes: size, maxResumes: 0, timeoutMs: 30_000, chunkSize });
  return result.body;
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<number> {
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.byteLength;
  }
  return bytes;
}

async function verify(body: AsyncIterable<Uint8Array>): Promise<number> {
  const iterator = body[Symbol.asyncIterator]();
  let bytes = 0;
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) {
        controller.close();
      } else {
        bytes += next.value.byteLength;
        controller.enqueue(next.value);
      }
    },
  });
  const result = await openpgp.verify({
    message: await openpgp.createMessage({ binary: source }),
    signature: await openpgp.readSignature({ binarySignature: signatureBytes }),
    verificationKeys: publicKey,
    format: 'binary',
  });
  const reader = (result.data as ReadableStream<Uint8Array>).getReader();
  while (!(await reader.read()).done) {}
  await result.signatures[0]?.verified;
  return bytes;
}

const cases: Array<[string, () => Promise<number>]> = [
  ['streamDownload, 1 MiB chunks, drain', async () => drain(await download(1 << 20))],
  ['streamDownload, socket chunks, drain', async () => drain(await download(0))],
  ['streamDownload, 1 MiB chunks, openpgp verify', async () => verify(await download(1 << 20))],
  ['streamDownload, socket chunks, openpgp verify', async () => verify(await download(0))],
  [
    'undici fetch, drain',
    async () => {
      const response = await fetch(url);
      return drain(response.body as ReadableStream<Uint8Array> as unknown as AsyncIterable<Uint8Array>);
    },
  ],
  [
    'curl -o /dev/null',
    async () => {
      const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download}', url]);
      return Number(stdout);
    },
  ],
];

const results = new Map<string, number[]>();
try {
  for (let round = 0; round < rounds; round++) {
    for (const [label, measure] of cases) {
      const start = process.hrtime.bigint();
      const bytes = await measure();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (bytes !== size) {
        throw new Error(`${label}: got ${bytes} bytes, expected ${size}`);
      }
      results.set(label, [...(results.get(label) ?? []), bytes / 1e6 / seconds]);
    }
  }
} finally {
  child.kill('SIGTERM');
}

const baseline = median(results.get('curl -o /dev/null') ?? []);
console.log(`${sizeMiB} MiB over loopback, median of ${rounds} rounds (MB/s = 10^6 bytes/s)`);
for (const [label, values] of results) {
  const value = median(values);
  console.log(
    `${label.padEnd(48)} ${value.toFixed(0).padStart(6)} MB/s  ${(value / baseline).toFixed(2)}x curl`,
  );
}
