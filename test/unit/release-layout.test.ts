import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.ts';
import { PermanentError } from '../../shared/errors.ts';
import { parseDigests } from '../../shared/release/digests.ts';
import { artifactUrls, currentStoreKey, currentVersionUrl, storeKey } from '../../shared/release/layout.ts';

const stable = { name: 'stable', baseUrl: 'https://{channel}.release.flatcar-linux.net' };

describe('release layout', () => {
  it('reads current/version.txt under the channel and board', () => {
    expect(currentVersionUrl(stable, 'amd64-usr')).toBe(
      'https://stable.release.flatcar-linux.net/amd64-usr/current/version.txt',
    );
  });

  it('takes artifacts and their signatures from the versioned folder', () => {
    expect(artifactUrls(stable, 'arm64-usr', '3510.2.8', 'flatcar_production_pxe.vmlinuz')).toEqual({
      url: 'https://stable.release.flatcar-linux.net/arm64-usr/3510.2.8/flatcar_production_pxe.vmlinuz',
      signatureUrl:
        'https://stable.release.flatcar-linux.net/arm64-usr/3510.2.8/flatcar_production_pxe.vmlinuz.sig',
    });
  });

  it('works with a path-prefix template and the defaults from config', () => {
    const local = { name: 'beta', baseUrl: 'http://127.0.0.1:9999/{channel}/' };
    expect(currentVersionUrl(local, 'amd64-usr')).toBe(
      'http://127.0.0.1:9999/beta/amd64-usr/current/version.txt',
    );
    const [alpha] = parseConfig({}).channels;
    expect(alpha && artifactUrls(alpha, 'amd64-usr', '4081.0.0', 'version.txt').url).toBe(
      'https://alpha.release.flatcar-linux.net/amd64-usr/4081.0.0/version.txt',
    );
  });

  it('keeps the upstream layout in the store', () => {
    expect(storeKey(stable, 'amd64-usr', '3510.2.8', 'version.txt.sig')).toBe(
      'stable/amd64-usr/3510.2.8/version.txt.sig',
    );
    expect(storeKey('lts', 'amd64-usr', '3033.3.18', 'x.DIGESTS')).toBe('lts/amd64-usr/3033.3.18/x.DIGESTS');
    expect(currentStoreKey(stable, 'amd64-usr')).toBe('stable/amd64-usr/current/version.txt');
  });

  it.each([
    [
      'version',
      () => artifactUrls(stable, 'amd64-usr', '../..', 'x'),
      /version "..\/.." is not digits and dots/,
    ],
    ['version', () => storeKey(stable, 'amd64-usr', '1.2/3', 'x'), /version "1.2\/3"/],
    [
      'artifact',
      () => artifactUrls(stable, 'amd64-usr', '1.2.3', '../x'),
      /artifact "..\/x" is not a plain name/,
    ],
    ['artifact', () => artifactUrls(stable, 'amd64-usr', '1.2.3', 'a..b'), /artifact "a..b"/],
    ['board', () => currentVersionUrl(stable, 'amd64-usr/../x'), /board "amd64-usr\/..\/x"/],
    ['file', () => storeKey('stable', 'b', '1', ''), /file "" is not a plain name/],
    ['channel', () => currentStoreKey('../etc', 'b'), /channel "..\/etc"/],
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
