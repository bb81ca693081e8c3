import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransferTracker } from '../../local/progress.ts';
import { createLogger, type LogRecord } from '../../local/runtime/log.ts';
import { type ServeHandle, type ServeOptions, startServe } from '../../local/serve/index.ts';
import type { SimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { type CldistConfig, parseConfig } from '../../shared/config.ts';

export const MiB = 1024 * 1024;
export const board = 'amd64-usr';
export const bigArtifact = 'flatcar_production_image.bin.bz2';
export const smallArtifact = 'flatcar_production_pxe.vmlinuz';

/** Poll `probe` until it returns something other than undefined/false, or fail after `ms`. */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `cldist-${prefix}-`));
}

/** A config that mirrors `channels` of the sim origin and trusts only its key (written to `dir`). */
export async function simConfig(
  sim: SimOrigin,
  dir: string,
  channels: string[],
  overrides: Record<string, unknown> = {},
): Promise<CldistConfig> {
  const keyFile = join(dir, 'sim-origin.asc');
  await writeFile(keyFile, sim.publicKeyArmored);
  return parseConfig({
    channels: channels.map((name) => ({ name, baseUrl: sim.baseUrl })),
    boards: [board],
    artifacts: [{ name: 'version.txt' }, { name: bigArtifact }, { name: smallArtifact }],
    keyring: { files: [keyFile], trustedFingerprints: [sim.primaryFingerprint] },
    ...overrides,
  });
}

export async function publish(sim: SimOrigin, channel: string, version: string): Promise<void> {
  await sim.publishRelease({
    channel,
    board,
    version,
    artifacts: [
      { name: bigArtifact, size: 3 * MiB + 17 },
      { name: smallArtifact, size: MiB },
    ],
  });
}

export const quietTracker: TransferTracker = {
  begin: () => ({ advance() {}, end() {} }),
};

export interface Started {
  handle: ServeHandle;
  records: LogRecord[];
}

/** `cldist serve` in process: the same code the command runs, with logs kept for assertions. */
export async function serveFor(
  config: CldistConfig,
  dataDir: string,
  extra: Partial<ServeOptions> = {},
): Promise<Started> {
  const records: LogRecord[] = [];
  const logger = createLogger({ format: 'json', write: () => {}, onRecord: (r) => records.push(r) });
  const handle = await startServe({
    // A transient failure comes back after a second, not five: the tests wait for retries.
    config: { ...config, queue: { ...config.queue, retry: { ...config.queue.retry, firstDelaySeconds: 1 } } },
    dataDir,
    host: '127.0.0.1',
    port: 0,
    concurrency: 2,
    logger,
    tracker: quietTracker,
    pollEveryMs: 3_600_000,
    ...extra,
  });
  return { handle, records };
}

export function adminHeaders(handle: Pick<ServeHandle, 'adminToken'>): Record<string, string> {
  return { Authorization: `Bearer ${handle.adminToken}` };
}

/** Artifact downloads the sim origin answered (not `current/`, not signatures). */
export function artifactGets(sim: SimOrigin): string[] {
  return sim.requests
    .filter((r) => r.method === 'GET' && !r.path.includes('/current/') && !r.path.endsWith('.sig'))
    .map((r) => r.path);
}
