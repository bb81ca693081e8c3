import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMirrorApp } from '../../local/mirror-http.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { flatcarInstallArgs, installPlanFor } from '../../shared/boot/installer.ts';
import type { BootProfile } from '../../shared/boot/profiles.ts';
import { parseConfig } from '../../shared/config.ts';
import { runPoll } from '../../shared/mirror/poller.ts';
import { type Gpg, startGpg } from '../support/pgp-fixtures.ts';
import { channelSources } from '../support/update-fixtures.ts';
import { drain, type MirrorRig, startRig } from './mirror-harness.ts';

const board = 'amd64-usr';
const version = '4081.2.0';
const image = 'flatcar_production_image.bin.bz2';
const defaultArtifacts = parseConfig({}).sources[0]?.artifacts ?? [];
/** flatcar-install's own wget options (flatcar/init, bin/flatcar-install, WGET_ARGS). */
const wgetArgs = ['--tries', '10', '--timeout=20', '--retry-connrefused'];

function wget(args: string[], cwd: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('wget', [...wgetArgs, ...args], { cwd, encoding: 'utf8', timeout: 30_000 }, (error, stdout) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout });
    });
  });
}

/**
 * What `flatcar-install -b BASEURL [-V current]` asks a release server for, read from its `prep_url` and
 * `download_from_url` (flatcar/init, bin/flatcar-install): `-b` replaces `https://{channel}.release...
 * /{board}` whole, so BASEURL is the mirror's `{channel}/{board}` folder.
 *   1. GET  BASEURL/current/version.txt, reading `FLATCAR_VERSION=` (only when the version is `current`);
 *   2. HEAD BASEURL/VERSION/flatcar_production_image.bin.bz2 (`wget --spider`);
 *   3. HEAD BASEURL/VERSION/flatcar_production_image.bin.bz2.sig;
 *   4. GET  the .sig, then 5. GET the image, checked with `gpg --verify`.
 * It reads no DIGESTS. With `-o OEM` the image is `flatcar_production_OEM_image.bin.bz2` instead.
 */
/**
 * The URLs flatcar-install builds from its options, as `prep_url` does (flatcar/init, bin/flatcar-install):
 * `-C` without `-V` means version `current`, resolved through `BASEURL/current/version.txt`; `-o ""` keeps
 * the image `flatcar_production_image.bin.bz2`; `-b` is the base, trailing slash dropped.
 */
function prepUrl(args: readonly string[]): { base: string; version: string; image: string } {
  const option = (flag: string) => {
    const at = args.indexOf(flag);
    return at < 0 ? undefined : args[at + 1];
  };
  const oem = option('-o')?.replaceAll('"', '') ?? '';
  return {
    base: (option('-b') ?? '').replace(/\/$/, ''),
    version: option('-V') ?? 'current',
    image: oem === '' ? 'flatcar_production_image.bin.bz2' : `flatcar_production_${oem}_image.bin.bz2`,
  };
}

describe('the mirror as a release server for flatcar-install -b', () => {
  let rig: MirrorRig;
  let server: RunningServer;
  let gpg: Gpg;
  let work: string;
  const requests: string[] = [];

  beforeAll(async () => {
    rig = await startRig({ channels: ['stable'], artifacts: defaultArtifacts });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version,
      artifacts: defaultArtifacts
        .filter((artifact) => artifact.name !== 'version.txt')
        .map((artifact) => ({ name: artifact.name, size: artifact.name === image ? 300_000 : 1000 })),
    });
    await runPoll(rig.deps, rig.config);
    expect((await drain(rig.worker(), rig.jobsQueue)).failures).toBe(0);
    const app = new Hono();
    app.use(async (c, next) => {
      requests.push(`${c.req.method} ${new URL(c.req.url).pathname}`);
      await next();
    });
    app.route('/', createMirrorApp(rig.store));
    server = await serveNode(app, { host: '127.0.0.1', port: 0 });
    gpg = await startGpg();
    await gpg.importKey(rig.origin.publicKeyArmored);
    work = await mkdtemp(join(tmpdir(), 'cldist-flatcar-install-'));
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await gpg?.close();
    await rig?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('serves every path flatcar-install requests for -V current, and gpg accepts the image', async () => {
    const base = `${server.url}/mirror/stable/${board}`;
    requests.length = 0;
    const versionFile = await wget(['-qO-', `${base}/current/version.txt`], work);
    expect(versionFile.code).toBe(0);
    const current = /^FLATCAR_VERSION=(.*)$/m.exec(versionFile.stdout)?.[1];
    expect(current).toBe(version);
    const imageUrl = `${base}/${current}/${image}`;
    expect((await wget(['--spider', '--quiet', imageUrl], work)).code).toBe(0);
    expect((await wget(['--spider', '--quiet', `${imageUrl}.sig`], work)).code).toBe(0);
    expect(
      (await wget(['--no-verbose', '-O', join(work, `${image}.sig`), `${imageUrl}.sig`], work)).code,
    ).toBe(0);
    expect((await wget(['--no-verbose', '-O', join(work, image), imageUrl], work)).code).toBe(0);
    const verified = await gpg.verify(
      await readFile(join(work, `${image}.sig`)),
      await readFile(join(work, image)),
    );
    expect(verified.code, verified.stderr).toBe(0);
    expect(requests).toEqual([
      `GET /mirror/stable/${board}/current/version.txt`,
      `HEAD /mirror/stable/${board}/${version}/${image}`,
      `HEAD /mirror/stable/${board}/${version}/${image}.sig`,
      `GET /mirror/stable/${board}/${version}/${image}.sig`,
      `GET /mirror/stable/${board}/${version}/${image}`,
    ]);
  });

  it('serves the explicit -V VERSION path, which skips version.txt', async () => {
    const base = `${server.url}/mirror/stable/${board}`;
    requests.length = 0;
    const imageUrl = `${base}/${version}/${image}`;
    expect((await wget(['--spider', '--quiet', imageUrl], work)).code).toBe(0);
    expect((await wget(['--spider', '--quiet', `${imageUrl}.sig`], work)).code).toBe(0);
    expect((await wget(['--no-verbose', '-O', join(work, 'v.sig'), `${imageUrl}.sig`], work)).code).toBe(0);
    expect(requests).toEqual([
      `HEAD /mirror/stable/${board}/${version}/${image}`,
      `HEAD /mirror/stable/${board}/${version}/${image}.sig`,
      `GET /mirror/stable/${board}/${version}/${image}.sig`,
    ]);
  });

  it.each([
    ['current', undefined],
    ['pinned', version],
  ])(
    "serves every path the boot installer's own command line makes flatcar-install request (%s)",
    async (_kind, pinned) => {
      const profile: BootProfile = {
        name: 'disk',
        channel: 'stable',
        board,
        version: pinned ?? 'current',
        kernelArgs: [],
        install: { disk: '/dev/sda' },
        createdAt: '',
        updatedAt: '',
      };
      const plan = installPlanFor(
        profile,
        version,
        `${server.url}/mirror`,
        'http://unused/config',
        channelSources('stable'),
      );
      if (plan === undefined) throw new Error('an install profile has an install plan');
      const { base, version: asked, image: name } = prepUrl(flatcarInstallArgs(plan));
      expect(base).toBe(`${server.url}/mirror/stable/${board}`);
      expect(name).toBe(image);
      requests.length = 0;
      let resolved = asked;
      if (asked === 'current') {
        const versionFile = await wget(['-qO-', `${base}/current/version.txt`], work);
        resolved = /^FLATCAR_VERSION=(.*)$/m.exec(versionFile.stdout)?.[1] ?? '';
      }
      expect(resolved).toBe(version);
      const imageUrl = `${base}/${resolved}/${name}`;
      expect((await wget(['--spider', '--quiet', imageUrl], work)).code).toBe(0);
      expect((await wget(['--spider', '--quiet', `${imageUrl}.sig`], work)).code).toBe(0);
      expect(requests).toEqual([
        ...(pinned === undefined ? [`GET /mirror/stable/${board}/current/version.txt`] : []),
        `HEAD /mirror/stable/${board}/${version}/${image}`,
        `HEAD /mirror/stable/${board}/${version}/${image}.sig`,
      ]);
    },
  );

  it('answers 404 for a version it has not mirrored, so flatcar-install stops with "Image URL unavailable"', async () => {
    const base = `${server.url}/mirror/stable/${board}`;
    const spider = await wget(['--spider', '--quiet', `${base}/9999.0.0/${image}`], work);
    expect(spider.code).toBe(8);
  });
});
