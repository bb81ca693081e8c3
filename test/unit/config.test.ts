import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.ts';
import { channelNames, sourceOfChannel } from '../../shared/config-sources.ts';
import { ConfigError, describeError } from '../../shared/errors.ts';

describe('config', () => {
  it('reads a bare channel name (Omaha groups, boot profiles) as the first source that has that channel', () => {
    const { sources } = parseConfig({
      sources: [
        { name: 'flatcar', channels: [{ name: 'stable' }, { name: 'beta' }] },
        { name: 'private', channels: [{ name: 'stable' }, { name: 'edge' }] },
      ],
    });
    expect(sourceOfChannel(sources, 'stable')).toBe('flatcar');
    expect(sourceOfChannel(sources, 'edge')).toBe('private');
    expect(sourceOfChannel(sources, 'nightly')).toBeUndefined();
    expect(channelNames(sources)).toEqual(['stable', 'beta', 'edge']);
  });

  it('defaults to one Flatcar source: its channels, amd64-usr, the OpenStack-style artifacts and the flatcar-install image', () => {
    const config = parseConfig({});
    expect(config.sources).toHaveLength(1);
    const [flatcar] = config.sources;
    expect(flatcar).toMatchObject({
      name: 'flatcar',
      baseUrl: 'https://{channel}.release.flatcar-linux.net',
      versionKey: 'FLATCAR_VERSION_ID',
      mirrorPath: 'flatcar',
    });
    expect(flatcar?.keys).toBeUndefined();
    expect(flatcar?.channels.map((c) => c.name)).toEqual(['alpha', 'beta', 'stable', 'lts']);
    expect(flatcar?.channels.every((c) => c.boards.join() === 'amd64-usr')).toBe(true);
    expect(flatcar?.artifacts.map((a) => a.name)).toEqual([
      'version.txt',
      'flatcar_production_openstack_image.img.bz2',
      'flatcar_production_pxe.vmlinuz',
      'flatcar_production_pxe_image.cpio.gz',
      'flatcar_production_image.bin.bz2',
    ]);
    expect(config.keyring.trustedFingerprints).toContain('F88CFEDEFF29A5B4D9523864E25D9AED0593B34A');
    expect(config.store).toEqual({ kind: 'local', path: 'data/mirror' });
  });

  it('takes CoreOS and Flatcar side by side, {prefix} naming each image family, boards per channel', () => {
    const config = parseConfig({
      sources: [
        {
          name: 'coreos',
          baseUrl: 'https://{channel}.release.core-os.net/{board}/',
          versionKey: 'COREOS_VERSION_ID',
          channels: [{ name: 'stable' }],
          keys: ['04127D0BFABEC8871FFB2CCE50E0885593D2DCB4'],
        },
        {
          name: 'flatcar',
          channels: [
            { name: 'stable', boards: ['amd64-usr', 'arm64-usr'] },
            { name: 'current-2024', boards: ['amd64-usr'] },
          ],
          artifacts: [
            { name: 'version.txt' },
            { name: '{prefix}_production_image.bin.bz2', required: false },
          ],
        },
      ],
    });
    const [coreos, flatcar] = config.sources;
    expect(coreos?.artifacts.map((a) => a.name)).toContain('coreos_production_openstack_image.img.bz2');
    expect(coreos?.mirrorPath).toBe('coreos');
    expect(coreos?.baseUrl).toBe('https://{channel}.release.core-os.net/{board}');
    expect(flatcar?.artifacts).toEqual([
      { name: 'version.txt', required: true },
      { name: 'flatcar_production_image.bin.bz2', required: false },
    ]);
    expect(flatcar?.channels.map((c) => [c.name, c.boards, c.upstream, c.current])).toEqual([
      ['stable', ['amd64-usr', 'arm64-usr'], 'stable', 'current'],
      ['current-2024', ['amd64-usr'], 'lts', 'current-2024'],
    ]);
  });

  it('reads the old top-level channels, boards and artifacts as one source at the mirror root', () => {
    const config = parseConfig({
      channels: [{ name: 'stable', baseUrl: 'http://127.0.0.1:9/{channel}' }, { name: 'beta' }],
      boards: ['arm64-usr'],
      artifacts: [{ name: 'version.txt' }],
    });
    expect(config.sources).toHaveLength(1);
    expect(config.sources[0]).toMatchObject({
      name: 'flatcar',
      mirrorPath: '',
      artifacts: [{ name: 'version.txt' }],
    });
    expect(config.sources[0]?.channels.map((c) => [c.name, c.boards, c.baseUrl])).toEqual([
      ['stable', ['arm64-usr'], 'http://127.0.0.1:9/{channel}'],
      ['beta', ['arm64-usr'], undefined],
    ]);
  });

  it.each([
    [
      'old and new shapes together',
      { sources: [{ name: 'a' }], boards: ['amd64-usr'] },
      /boards: the top-level "boards" cannot be combined with "sources"/,
    ],
    [
      'a source name twice',
      { sources: [{ name: 'a' }, { name: 'a' }] },
      /sources\.1\.name: "a" is used twice/,
    ],
    [
      'a shared mirror path',
      { sources: [{ name: 'a' }, { name: 'b', mirrorPath: 'a' }] },
      /sources\.1\.mirrorPath: "a" is another source's mirror path/,
    ],
    [
      'an empty mirror path beside another source',
      { sources: [{ name: 'a', mirrorPath: '' }, { name: 'b' }] },
      /sources\.0\.mirrorPath: an empty mirror path is only for a single source/,
    ],
    [
      'a key the keyring does not trust',
      { sources: [{ name: 'a', keys: ['A'.repeat(40)] }] },
      /sources\.0\.keys\.0: A{40} is not in keyring\.trustedFingerprints/,
    ],
    [
      'an unknown version key',
      { sources: [{ name: 'a', versionKey: 'VERSION_ID' }] },
      /sources\.0\.versionKey/,
    ],
    [
      'a placeholder other than {prefix}',
      { sources: [{ name: 'a', artifacts: [{ name: '{board}.img' }] }] },
      /sources\.0\.artifacts\.0\.name: a file name where "\{prefix\}" is the only placeholder/,
    ],
    [
      'a board twice on a channel',
      { sources: [{ name: 'a', channels: [{ name: 'stable', boards: ['amd64-usr', 'amd64-usr'] }] }] },
      /sources\.0\.channels\.0\.boards: unique board names/,
    ],
  ])('refuses %s, naming the field', (_what, input, message) => {
    expect(() => parseConfig(input)).toThrow(message);
  });

  it('names the bad field and what was expected', () => {
    const attempt = () => parseConfig({ channels: [{ name: 'stable', baseUrl: 'ftp://x' }] });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/channels\.0\.baseUrl: an http\(s\) URL/);
  });

  it('validates the free-space threshold of the mirror, default 256 MiB, 0 for off', () => {
    expect(parseConfig({}).worker.minFreeDiskMiB).toBe(256);
    expect(parseConfig({ worker: { minFreeDiskMiB: 0 } }).worker.minFreeDiskMiB).toBe(0);
    expect(() => parseConfig({ worker: { minFreeDiskMiB: -1 } }, 'cfg.json')).toThrow(
      /worker\.minFreeDiskMiB/,
    );
    expect(() => parseConfig({ worker: { minFreeDiskMiB: 1.5 } }, 'cfg.json')).toThrow(
      /worker\.minFreeDiskMiB/,
    );
  });

  it('rejects artifact names that could escape the release folder', () => {
    expect(() => parseConfig({ artifacts: [{ name: '../etc/passwd' }] })).toThrow(/artifacts\.0\.name/);
    expect(() => parseConfig({ artifacts: [{ name: 'a/b' }] })).toThrow(/artifacts\.0\.name/);
  });

  it('warns about unknown Ignition keys by default, and takes reject, refusing anything else by name', () => {
    expect(parseConfig({}).api.unknownIgnitionKeys).toBe('warn');
    expect(parseConfig({ api: { unknownIgnitionKeys: 'reject' } }).api.unknownIgnitionKeys).toBe('reject');
    expect(() => parseConfig({ api: { unknownIgnitionKeys: 'refuse' } })).toThrow(/api\.unknownIgnitionKeys/);
  });

  it('rejects unknown keys instead of ignoring a typo', () => {
    expect(() => parseConfig({ chanels: [] })).toThrow(/chanels/);
  });

  it('normalises fingerprints and rejects short ones', () => {
    const config = parseConfig({
      keyring: { trustedFingerprints: ['f88c fede ff29 a5b4 d952 3864 e25d 9aed 0593 b34a'] },
    });
    expect(config.keyring.trustedFingerprints).toEqual(['F88CFEDEFF29A5B4D9523864E25D9AED0593B34A']);
    expect(() => parseConfig({ keyring: { trustedFingerprints: ['E25D9AED0593B34A'] } })).toThrow(
      /keyring\.trustedFingerprints\.0: a full hex key fingerprint/,
    );
  });

  it('requires a bucket for the S3 store', () => {
    expect(() => parseConfig({ store: { kind: 's3' } })).toThrow(/store\.bucket/);
  });
});

describe('describeError', () => {
  it('chains causes, without repeating a cause the wrapper already quotes', () => {
    const root = new Error('getaddrinfo ENOTFOUND example.net');
    const quoted = new Error(`GET https://example.net/ failed: ${root.message}`, { cause: root });
    expect(describeError(quoted)).toBe('GET https://example.net/ failed: getaddrinfo ENOTFOUND example.net');
    const wrapped = new Error('poll failed', { cause: new Error('socket hang up') });
    expect(describeError(wrapped)).toBe('poll failed: socket hang up');
  });
});
