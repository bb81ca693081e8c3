import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import type { ReleaseManifest } from '../../shared/mirror/finalize.ts';
import { runCldist } from '../support/cli.ts';
import { tempDir } from './serve-harness.ts';

/** `cldist mirror` as a cron job runs it: a child process, to its end. */
const cldistMirror = (args: string[]) =>
  runCldist(['mirror', ...args], {
    timeoutMs: 120_000,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });

/** What each source publishes: stable and an LTS channel, amd64 and arm64, and a yearly Flatcar LTS stream. */
interface Stream {
  source: 'coreos' | 'flatcar';
  /** The channel's name in the config and the mirror. */
  channel: string;
  /** Where the origin serves it: `lts` with `current-2024` for the stream. */
  upstream: string;
  current: string;
  board: string;
  version: string;
}

/** Both `stable` channels carry the same version: the mirror must keep them apart by source. */
const streams: Stream[] = [
  ...['amd64-usr', 'arm64-usr'].flatMap((board): Stream[] => [
    {
      source: 'coreos',
      channel: 'stable',
      upstream: 'stable',
      current: 'current',
      board,
      version: '2512.3.0',
    },
    { source: 'coreos', channel: 'lts', upstream: 'lts', current: 'current', board, version: '2345.3.0' },
    {
      source: 'flatcar',
      channel: 'stable',
      upstream: 'stable',
      current: 'current',
      board,
      version: '2512.3.0',
    },
    { source: 'flatcar', channel: 'lts', upstream: 'lts', current: 'current', board, version: '4081.3.6' },
  ]),
  {
    source: 'flatcar',
    channel: 'current-2024',
    upstream: 'lts',
    current: 'current-2024',
    board: 'amd64-usr',
    version: '3815.2.9',
  },
];

/** Every artifact required; `{prefix}` gives `coreos_production_…` and `flatcar_production_…`. */
const artifactTemplates = [
  'version.txt',
  '{prefix}_production_image.bin.bz2',
  '{prefix}_production_pxe.vmlinuz',
];
const nameFor = (source: Stream['source'], template: string) => template.replaceAll('{prefix}', source);

describe('cldist mirror --once with CoreOS and Flatcar sources side by side', () => {
  const origins = {} as Record<Stream['source'], SimOrigin>;
  const published = new Map<string, Record<string, string>>();
  let dir = '';
  let keyring: { files: string[]; trustedFingerprints: string[] };

  const configFor = (keys: (source: Stream['source']) => string) => ({
    sources: [
      {
        ...origins.coreos.source('coreos', [
          { name: 'stable', boards: ['amd64-usr', 'arm64-usr'] },
          { name: 'lts', boards: ['amd64-usr', 'arm64-usr'] },
        ]),
        // CoreOS's own servers put the board in the host's path: the template says where.
        baseUrl: `${origins.coreos.url}/{channel}/{board}`,
        artifacts: artifactTemplates.map((name) => ({ name, required: true })),
        keys: [keys('coreos')],
      },
      {
        ...origins.flatcar.source('flatcar', [
          { name: 'stable', boards: ['amd64-usr', 'arm64-usr'] },
          { name: 'lts', boards: ['amd64-usr', 'arm64-usr'] },
          { name: 'current-2024', boards: ['amd64-usr'] },
        ]),
        artifacts: artifactTemplates.map((name) => ({ name, required: true })),
        keys: [keys('flatcar')],
      },
    ],
    keyring,
  });

  beforeAll(async () => {
    dir = await tempDir('mirror-sources');
    origins.coreos = await startSimOrigin({ style: 'coreos' });
    origins.flatcar = await startSimOrigin({ style: 'flatcar' });
    const files: string[] = [];
    for (const [name, origin] of Object.entries(origins)) {
      const file = join(dir, `${name}.asc`);
      await writeFile(file, origin.publicKeyArmored);
      files.push(file);
    }
    keyring = {
      files,
      trustedFingerprints: [origins.coreos.primaryFingerprint, origins.flatcar.primaryFingerprint],
    };
    for (const stream of streams) {
      const release = await origins[stream.source].publishRelease({
        channel: stream.upstream,
        board: stream.board,
        version: stream.version,
        current: stream.current,
        artifacts: artifactTemplates
          .filter((name) => name !== 'version.txt')
          .map((name, i) => ({ name: nameFor(stream.source, name), size: 40_000 + i * 1000 })),
      });
      published.set(`${stream.source}/${stream.channel}/${stream.board}`, release.sha512);
    }
  });

  afterAll(async () => {
    await Promise.all(Object.values(origins).map((origin) => origin.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('mirrors every release of both sources under its own folder, each verified by its own key, exit 0', async () => {
    const configFile = join(dir, 'sources.json');
    await writeFile(configFile, JSON.stringify(configFor((source) => origins[source].primaryFingerprint)));
    const dataDir = join(dir, 'data');
    const run = await cldistMirror(['--once', '--config', configFile, '--data-dir', dataDir, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const done = lines.find((l) => l.event === 'mirror.done');
    expect(done).toMatchObject({ ok: true, problems: [], verifiedArtifacts: streams.length * 3 });
    expect(new Set(done?.newReleases as string[])).toEqual(
      new Set(streams.map((s) => `${s.source}/${s.channel}/${s.board}/${s.version}`)),
    );
    expect(lines.filter((l) => l.event === 'poll.not_published' || l.level === 'error')).toEqual([]);
    const announced = lines
      .filter((l) => l.message === 'cldist event release.mirrored')
      .map((l) => `${l.source}/${l.channel}/${l.board}`);
    expect(announced.sort()).toEqual(streams.map((s) => `${s.source}/${s.channel}/${s.board}`).sort());

    for (const stream of streams) {
      const origin = origins[stream.source];
      const sha512 = published.get(`${stream.source}/${stream.channel}/${stream.board}`) ?? {};
      const base = join(dataDir, 'mirror', stream.source, stream.channel, stream.board);
      const names = artifactTemplates.map((name) => nameFor(stream.source, name));
      const files = await readdir(join(base, stream.version));
      expect(files).toEqual(
        expect.arrayContaining([...names, ...names.map((name) => `${name}.sig`), 'release.json']),
      );
      const manifest = JSON.parse(
        await readFile(join(base, stream.version, 'release.json'), 'utf8'),
      ) as ReleaseManifest;
      expect(manifest).toMatchObject({
        source: stream.source,
        channel: stream.channel,
        board: stream.board,
        version: stream.version,
        missing: [],
        failedVerification: [],
      });
      expect(Object.keys(manifest.artifacts).sort()).toEqual([...names].sort());
      for (const name of names) {
        expect(manifest.artifacts[name]?.primaryKeyFingerprint).toBe(origin.primaryFingerprint);
        expect(manifest.artifacts[name]?.sha512).toBe(sha512[name]);
        const bytes = await readFile(join(base, stream.version, name));
        expect(bytes.length).toBe(manifest.artifacts[name]?.size);
      }
      const current = await readFile(join(base, 'current', 'version.txt'), 'utf8');
      const key = stream.source === 'coreos' ? 'COREOS_VERSION_ID' : 'FLATCAR_VERSION_ID';
      expect(current).toContain(`${key}=${stream.version}`);
    }
    const folders = (await readdir(join(dataDir, 'mirror'))).filter((name) => !name.startsWith('.'));
    expect(folders.sort()).toEqual(['coreos', 'flatcar']);
  });

  it("refuses a source's artifacts signed by a key trusted only for the other source, and exits 1", async () => {
    const configFile = join(dir, 'swapped.json');
    // Both keys stay in the keyring; CoreOS names Flatcar's key as its own, so CoreOS's signatures fail.
    await writeFile(configFile, JSON.stringify(configFor(() => origins.flatcar.primaryFingerprint)));
    const dataDir = join(dir, 'data-swapped');
    const run = await cldistMirror(['--once', '--config', configFile, '--data-dir', dataDir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('coreos/stable/amd64-usr/2512.3.0/version.txt: failed_verification');
    expect(run.stderr).toContain('untrusted-key');
    expect(run.stderr).not.toContain('flatcar/');
    const flatcarStable = join(dataDir, 'mirror', 'flatcar', 'stable', 'amd64-usr', '2512.3.0');
    expect(await readdir(flatcarStable)).toContain('release.json');
    const coreosStable = await readdir(
      join(dataDir, 'mirror', 'coreos', 'stable', 'amd64-usr', '2512.3.0'),
    ).catch(() => []);
    expect(coreosStable).toEqual([]);
  });
});
