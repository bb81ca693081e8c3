import { describe, expect, it } from 'vitest';
import { parseConfig, type SourceChannel } from '../../shared/config.ts';
import { PermanentError } from '../../shared/errors.ts';
import { parseDigests } from '../../shared/release/digests.ts';
import { artifactUrls, currentStoreKey, currentVersionUrl, storeKey } from '../../shared/release/layout.ts';

const flatcar = { baseUrl: 'https://{channel}.release.flatcar-linux.net' };
const channel = (name: string, extra: Partial<SourceChannel> = {}): SourceChannel => ({
  name,
  boards: ['amd64-usr'],
  upstream: name,
  current: 'current',
  ...extra,
});
const stable = channel('stable');

describe('release layout', () => {
  it('reads current/version.txt under the channel and board', () => {
    expect(currentVersionUrl(flatcar, stable, 'amd64-usr')).toBe(
      'https://stable.release.flatcar-linux.net/amd64-usr/current/version.txt',
    );
  });

  it('takes artifacts and their signatures from the versioned folder', () => {
    expect(artifactUrls(flatcar, stable, 'arm64-usr', '3510.2.8', 'flatcar_production_pxe.vmlinuz')).toEqual({
      url: 'https://stable.release.flatcar-linux.net/arm64-usr/3510.2.8/flatcar_production_pxe.vmlinuz',
      signatureUrl:
        'https://stable.release.flatcar-linux.net/arm64-usr/3510.2.8/flatcar_production_pxe.vmlinuz.sig',
    });
  });

  it('works with a path-prefix template, a channel override and the defaults from config', () => {
    const local = { baseUrl: 'http://127.0.0.1:9999/{channel}/' };
    expect(currentVersionUrl(local, channel('beta'), 'amd64-usr')).toBe(
      'http://127.0.0.1:9999/beta/amd64-usr/current/version.txt',
    );
    const own = channel('beta', { baseUrl: 'http://127.0.0.1:1/x/{channel}' });
    expect(currentVersionUrl(local, own, 'arm64-usr')).toBe(
      'http://127.0.0.1:1/x/beta/arm64-usr/current/version.txt',
    );
    const [source] = parseConfig({}).sources;
    const alpha = source?.channels[0];
    expect(source && alpha && artifactUrls(source, alpha, 'amd64-usr', '4081.0.0', 'version.txt').url).toBe(
      'https://alpha.release.flatcar-linux.net/amd64-usr/4081.0.0/version.txt',
    );
  });

  it('puts the board where the template says, as for CoreOS', () => {
    const coreos = { baseUrl: 'https://{channel}.release.core-os.net/{board}/' };
    expect(currentVersionUrl(coreos, stable, 'amd64-usr')).toBe(
      'https://stable.release.core-os.net/amd64-usr/current/version.txt',
    );
  });

  it('reads an LTS stream from the LTS server, its version file in current-{year}', () => {
    const [source] = parseConfig({
      sources: [{ name: 'flatcar', channels: [{ name: 'current-2024' }] }],
    }).sources;
    const stream = source?.channels[0];
    expect(stream).toMatchObject({ name: 'current-2024', upstream: 'lts', current: 'current-2024' });
    if (source === undefined || stream === undefined) return;
    expect(currentVersionUrl(source, stream, 'amd64-usr')).toBe(
      'https://lts.release.flatcar-linux.net/amd64-usr/current-2024/version.txt',
    );
    expect(artifactUrls(source, stream, 'amd64-usr', '3815.2.5', 'version.txt').url).toBe(
      'https://lts.release.flatcar-linux.net/amd64-usr/3815.2.5/version.txt',
    );
    expect(storeKey(source.mirrorPath, stream, 'amd64-usr', '3815.2.5', 'version.txt')).toBe(
      'flatcar/current-2024/amd64-usr/3815.2.5/version.txt',
    );
  });

  it("keeps the upstream layout in the store, under the source's mirror path", () => {
    expect(storeKey('flatcar', stable, 'amd64-usr', '3510.2.8', 'version.txt.sig')).toBe(
      'flatcar/stable/amd64-usr/3510.2.8/version.txt.sig',
    );
    expect(storeKey('coreos', 'lts', 'amd64-usr', '3033.3.18', 'x.DIGESTS')).toBe(
      'coreos/lts/amd64-usr/3033.3.18/x.DIGESTS',
    );
    expect(storeKey('', 'lts', 'amd64-usr', '3033.3.18', 'x.DIGESTS')).toBe(
      'lts/amd64-usr/3033.3.18/x.DIGESTS',
    );
    expect(currentStoreKey('coreos', stable, 'amd64-usr')).toBe(
      'coreos/stable/amd64-usr/current/version.txt',
    );
  });

  it.each([
    [
      'version',
      () => artifactUrls(flatcar, stable, 'amd64-usr', '../..', 'x'),
      /version "..\/.." is not digits and dots/,
    ],
    ['version', () => storeKey('flatcar', stable, 'amd64-usr', '1.2/3', 'x'), /version "1.2\/3"/],
    [
      'artifact',
      () => artifactUrls(flatcar, stable, 'amd64-usr', '1.2.3', '../x'),
      /artifact "..\/x" is not a plain name/,
    ],
    ['artifact', () => artifactUrls(flatcar, stable, 'amd64-usr', '1.2.3', 'a..b'), /artifact "a..b"/],
    ['board', () => currentVersionUrl(flatcar, stable, 'amd64-usr/../x'), /board "amd64-usr\/..\/x"/],
    ['file', () => storeKey('flatcar', 'stable', 'b', '1', ''), /file "" is not a plain name/],
    ['channel', () => currentStoreKey('flatcar', '../etc', 'b'), /channel "..\/etc"/],
    ['mirror path', () => currentStoreKey('..', 'stable', 'b'), /mirror path ".."/],
  ])('refuses a %s that could leave its folder', (_kind, attempt, message) => {
    expect(attempt).toThrow(PermanentError);
    expect(attempt).toThrow(message);
  });
});

const md5 = 'd41d8cd98f00b204e9800998ecf8427e';
const sha1 = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';
const sha512a = 'a'.repeat(128);
const sha512b = 'B'.repeat(128);

describe('parseDigests', () => {
  it('reads only the SHA512 section', () => {
    const text = `# MD5 HASH\n${md5}  flatcar_production_image.bin.bz2\n# SHA1 HASH\n${sha1}  flatcar_production_image.bin.bz2\n# SHA512 HASH\n${sha512a}  flatcar_production_image.bin.bz2\n${sha512b} *other.img\n`;
    expect(parseDigests(text)).toEqual(
      new Map([
        ['flatcar_production_image.bin.bz2', sha512a],
        ['other.img', 'b'.repeat(128)],
      ]),
    );
  });

  it('gives an empty map when there is no SHA512 section', () => {
    expect(parseDigests(`# MD5 HASH\n${md5}  x\n`).size).toBe(0);
  });

  it('names the line of a malformed SHA512 entry', () => {
    const text = `# SHA512 HASH\n${sha512a}  good\n${md5}  short\n`;
    expect(() => parseDigests(text)).toThrow(/DIGESTS line 3: expected "<128 hex digits> {2}<file name>"/);
  });
});
