import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.ts';
import { ConfigError, describeError } from '../../shared/errors.ts';

describe('config', () => {
  it('defaults to the Flatcar channels, amd64-usr, the OpenStack-style artifacts and the flatcar-install image', () => {
    const config = parseConfig({});
    expect(config.channels.map((c) => c.name)).toEqual(['alpha', 'beta', 'stable', 'lts']);
    expect(config.channels[0]?.baseUrl).toBe('https://{channel}.release.flatcar-linux.net');
    expect(config.boards).toEqual(['amd64-usr']);
    expect(config.artifacts.map((a) => a.name)).toEqual([
      'version.txt',
      'flatcar_production_openstack_image.img.bz2',
      'flatcar_production_pxe.vmlinuz',
      'flatcar_production_pxe_image.cpio.gz',
      'flatcar_production_image.bin.bz2',
    ]);
    expect(config.keyring.trustedFingerprints).toContain('F88CFEDEFF29A5B4D9523864E25D9AED0593B34A');
    expect(config.store).toEqual({ kind: 'local', path: 'data/mirror' });
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
