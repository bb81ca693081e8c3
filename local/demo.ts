import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CldistConfig, parseConfig } from '../shared/config.ts';
import { describeError, TransientError } from '../shared/errors.ts';
import { ensurePrivateDataDir } from './runtime/data-dir.ts';
import type { Logger } from './runtime/log.ts';
import { generateSimKey } from './sim-origin/signing.ts';
import { type SimOrigin, startSimOrigin } from './sim-origin/sim-origin.ts';

const MiB = 1024 * 1024;

/** Channel, first version and step: real-looking Flatcar numbers, each channel on its own branch. */
const demoChannels = [
  { name: 'stable', major: 4081, branch: 2 },
  { name: 'beta', major: 4152, branch: 1 },
] as const;

const demoBoard = 'amd64-usr';

/** Sizes of the synthetic artifacts: small enough to mirror in a second, big enough to show a progress bar. */
const demoArtifacts = [
  { name: 'flatcar_production_image.bin.bz2', size: 4 * MiB },
  { name: 'flatcar_production_pxe.vmlinuz', size: 1 * MiB },
  { name: 'flatcar_production_pxe_image.cpio.gz', size: 2 * MiB },
];

/** Every version stays mirrored, so publishing stops here to keep the demo's disk use bounded (~7 MiB each). */
export const defaultMaxDemoVersions = 30;

export interface DemoOptions {
  dataDir: string;
  logger: Logger;
  /** A new version on one channel every this many ms, taking the channels in turn. */
  publishEveryMs: number;
  /** Multiplies the artifact sizes, for a heavier demo. */
  sizeFactor?: number;
  /** Versions published in this data dir (all channels) after which publishing stops. */
  maxVersions?: number;
}

export interface Demo {
  origin: SimOrigin;
  /** The demo config: the sim origin's channels, its key as the only trusted key, a short schedule. */
  config: CldistConfig;
  /** Start publishing a new version every `publishEveryMs`. */
  startPublishing(): void;
  /** Publish the next version of the next channel now. */
  publishNext(): Promise<string>;
  close(): Promise<void>;
}

interface DemoState {
  /** The last published patch number per channel. */
  patches: Record<string, number>;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Write beside, then rename; on failure (a full disk) the partial `.tmp` is removed, never left behind. */
async function writeAtomically(path: string, text: string, mode?: number): Promise<void> {
  const temp = `${path}.tmp`;
  try {
    await writeFile(temp, text, mode === undefined ? {} : { mode });
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new TransientError(
      'demo-write-failed',
      `the demo cannot write ${path} (${code}); free space on that filesystem or pass another --data-dir`,
      { cause: error },
    );
  }
}

/**
 * The demo's upstream: the sim origin on loopback, signing with its own key. The key and the version
 * counters are kept under `{dataDir}/sim-origin`, so a restarted demo continues where it stopped (and what was
 * mirrored still verifies) instead of starting again at the first version. The key is trusted only
 * through the config built here, which only `serve --demo` uses.
 */
export async function startDemo(options: DemoOptions): Promise<Demo> {
  await ensurePrivateDataDir(options.dataDir);
  const folder = join(options.dataDir, 'sim-origin');
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const keyPath = join(folder, 'sim-origin-private-key.asc');
  const publicKeyPath = join(folder, 'sim-origin-public-key.asc');
  const statePath = join(folder, 'state.json');
  let privateKeyArmored: string;
  try {
    privateKeyArmored = await readFile(keyPath, 'utf8');
  } catch {
    const key = await generateSimKey('curve25519');
    privateKeyArmored = key.privateKey.armor();
    await writeAtomically(keyPath, privateKeyArmored, 0o600);
  }
  const origin = await startSimOrigin({ privateKeyArmored });
  try {
    return await publishDemo(origin, options, { publicKeyPath, statePath });
  } catch (error) {
    await origin.close();
    throw error;
  }
}

type DemoChannel = (typeof demoChannels)[number];

const versionOf = (channel: DemoChannel, patch: number) => `${channel.major}.${channel.branch}.${patch}`;

async function publishVersion(origin: SimOrigin, channel: DemoChannel, patch: number, factor: number) {
  const version = versionOf(channel, patch);
  await origin.publishRelease({
    channel: channel.name,
    board: demoBoard,
    version,
    artifacts: demoArtifacts.map((a) => ({ name: a.name, size: Math.round(a.size * factor) })),
  });
  return version;
}

/** The sim origin's channels, its key as the only trusted key, a short schedule. */
function demoConfig(origin: SimOrigin, publicKeyPath: string): CldistConfig {
  return parseConfig(
    {
      channels: demoChannels.map((c) => ({ name: c.name, baseUrl: origin.baseUrl })),
      boards: [demoBoard],
      artifacts: [{ name: 'version.txt' }, ...demoArtifacts.map((a) => ({ name: a.name }))],
      keyring: { files: [publicKeyPath], trustedFingerprints: [origin.primaryFingerprint] },
      schedule: { everyMinutes: 1, stallAfterMinutes: 1 },
      // The demo's faults clear within seconds; a retry after a second shows it.
      queue: { retry: { firstDelaySeconds: 1 } },
    },
    'demo config',
  );
}

async function publishDemo(
  origin: SimOrigin,
  options: DemoOptions,
  paths: { publicKeyPath: string; statePath: string },
): Promise<Demo> {
  const { publicKeyPath, statePath } = paths;
  await writeAtomically(publicKeyPath, origin.publicKeyArmored);
  const state: DemoState = (await readJson<DemoState>(statePath)) ?? { patches: {} };
  const publish = (channel: DemoChannel, patch: number) =>
    publishVersion(origin, channel, patch, options.sizeFactor ?? 1);

  for (const channel of demoChannels) {
    const patch = state.patches[channel.name] ?? 0;
    await publish(channel, patch);
    state.patches[channel.name] = patch;
  }
  await writeAtomically(statePath, JSON.stringify(state));
  for (const channel of demoChannels) {
    options.logger.info('demo.published', {
      channel: channel.name,
      version: versionOf(channel, state.patches[channel.name] ?? 0),
      origin: origin.url,
    });
  }

  const config = demoConfig(origin, publicKeyPath);

  let turn = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const maxVersions = options.maxVersions ?? defaultMaxDemoVersions;
  const published = () =>
    demoChannels.reduce((sum, channel) => sum + (state.patches[channel.name] ?? 0) + 1, 0);
  const publishNext = async (): Promise<string> => {
    const channel = demoChannels[turn % demoChannels.length] ?? demoChannels[0];
    turn++;
    const patch = (state.patches[channel.name] ?? 0) + 1;
    const version = await publish(channel, patch);
    state.patches[channel.name] = patch;
    await writeAtomically(statePath, JSON.stringify(state));
    options.logger.info('demo.published', { channel: channel.name, version });
    return version;
  };

  return {
    origin,
    config,
    publishNext,
    startPublishing() {
      const tick = () => {
        if (closed) return;
        if (published() >= maxVersions) {
          options.logger.info('demo.publishing_stopped', {
            versions: published(),
            reason: `reached ${maxVersions} versions; start with an empty --data-dir for a fresh demo`,
          });
          return;
        }
        publishNext()
          .catch((error: unknown) =>
            options.logger.error('demo.publish_failed', { cause: describeError(error) }),
          )
          .finally(() => {
            if (!closed) timer = setTimeout(tick, options.publishEveryMs);
          });
      };
      timer = setTimeout(tick, options.publishEveryMs);
    },
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      await origin.close();
    },
  };
}
