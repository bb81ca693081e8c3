import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSimKeyring } from '../../local/sim-origin/keyring.ts';
import { faults, type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { type CldistConfig, parseConfig } from '../../shared/config.ts';
import { silentLogger } from '../../shared/mirror/deps.ts';
import { keyringChecker } from '../../shared/mirror/signatures.ts';
import { type TransferDeps, transferArtifact } from '../../shared/mirror/worker.ts';
import { artifactUrls } from '../../shared/release/layout.ts';
import { createLocalStore } from '../../shared/store/index.ts';

const MiB = 1024 * 1024;
let origin: SimOrigin;
let root: string;
let config: CldistConfig;
let deps: TransferDeps;

beforeAll(async () => {
  origin = await startSimOrigin();
  await origin.publishRelease({
    channel: 'stable',
    board: 'amd64-usr',
    version: '1.0.0',
    artifacts: [{ name: 'big.bin', size: 8 * MiB }],
  });
  root = await mkdtemp(join(tmpdir(), 'cldist-abort-'));
  // An hour-long read timeout: without the abort reaching the socket, the stalled read would outlive the test.
  config = parseConfig({
    channels: [origin.channel('stable')],
    artifacts: [{ name: 'big.bin' }],
    limits: { requestTimeoutSeconds: 3600 },
  });
  deps = {
    store: createLocalStore(root),
    signatures: keyringChecker(await makeSimKeyring(origin)),
    clock: () => new Date(),
    logger: silentLogger,
    // Socket-sized chunks, so progress reaches exactly the byte where the origin stalls.
    chunkSize: 0,
  };
});

afterAll(async () => {
  await origin.close();
  await rm(root, { recursive: true, force: true });
});

describe('transfer abort', () => {
  it('aborting a transfer whose read has stalled ends it at once and leaves nothing visible or staged', async () => {
    origin.inject(/big\.bin$/, faults.stallAfter(2.5 * MiB), { times: 1 });
    const [source] = config.sources;
    const channel = source?.channels[0];
    if (source === undefined || channel === undefined) throw new Error('no channel');
    const urls = artifactUrls(source, channel, 'amd64-usr', '1.0.0', 'big.bin');
    const job = {
      v: 1 as const,
      source: source.name,
      channel: 'stable',
      board: 'amd64-usr',
      version: '1.0.0',
      artifact: 'big.bin',
      ...urls,
    };
    const controller = new AbortController();
    let received = 0;
    const transfer = transferArtifact(job, deps, config, {
      signal: controller.signal,
      onProgress: (bytes) => {
        received = bytes;
        // Abort from outside the read, once the last byte before the stall is through, as a shutdown does.
        if (bytes >= 2.5 * MiB && !controller.signal.aborted) {
          setImmediate(() => controller.abort(new Error('shutting down')));
        }
      },
    });
    await expect(transfer).rejects.toThrow();
    expect(received).toBe(2.5 * MiB);
    expect(await deps.store.head('stable/amd64-usr/1.0.0/big.bin')).toBeUndefined();
    const staging = await readdir(join(root, '.staging')).catch(() => []);
    expect(staging).toEqual([]);
  });
});
