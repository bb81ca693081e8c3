import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { pxeInitramfs, pxeKernel } from '../../shared/boot/profiles.ts';
import { runCldist } from '../support/cli.ts';
import { runIgnitionFetch } from '../support/ignition-run.ts';
import { bigArtifact, board, MiB, type Started, serveFor, simConfig, tempDir } from './serve-harness.ts';

const version = '4081.2.0';
const mac = '52:54:00:12:34:56';
const instanceConfig = {
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: 'data:,metal-1' } }] },
};

const cldist = (args: string[]) => runCldist(args);

function sha512(bytes: Uint8Array): string {
  return createHash('sha512').update(bytes).digest('hex');
}

describe('bare-metal boot end to end: cldist serve, the CLI, the real Ignition client', () => {
  let sim: SimOrigin;
  let dir: string;
  let started: Started;
  let connection: string[];

  beforeAll(async () => {
    sim = await startSimOrigin();
    dir = await tempDir('boot-e2e');
    const config = await simConfig(sim, dir, ['stable'], {
      artifacts: [
        { name: 'version.txt' },
        { name: pxeKernel },
        { name: pxeInitramfs },
        { name: bigArtifact },
      ],
    });
    await sim.publishRelease({
      channel: 'stable',
      board,
      version,
      artifacts: [
        { name: pxeKernel, size: MiB + 3 },
        { name: pxeInitramfs, size: 2 * MiB + 5 },
        { name: bigArtifact, size: MiB },
      ],
    });
    started = await serveFor(config, join(dir, 'data'), { bootListen: { host: '127.0.0.1', port: 0 } });
    await started.handle.pollNow();
    await started.handle.drain();
    connection = ['--api', started.handle.url, '--token', started.handle.adminToken];
    await writeFile(join(dir, 'instance.ign'), JSON.stringify(instanceConfig));
  }, 120_000);

  afterAll(async () => {
    await started?.handle.close();
    await sim?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('registers a machine with the CLI; boot preview prints a script whose kernel and initramfs are the verified objects', async () => {
    const profile = await cldist([
      'profiles',
      'put',
      'metal',
      '--channel',
      'stable',
      '--kernel-arg',
      'flatcar.first_boot=1',
      '--kernel-arg',
      'flatcar.autologin',
      ...connection,
    ]);
    expect(profile.stderr).toBe('');
    expect(profile.stdout).toBe(
      'created metal  stable/amd64-usr current  runs from RAM  flatcar.first_boot=1 flatcar.autologin\n',
    );
    const put = await cldist([
      'instances',
      'put',
      'metal-1',
      '--ignition',
      join(dir, 'instance.ign'),
      '--mac',
      mac,
      '--profile',
      'metal',
      ...connection,
    ]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toContain('boot: profile metal');

    const preview = await cldist(['boot', 'preview', '--mac', mac, ...connection]);
    expect(preview.code, preview.stderr).toBe(0);
    const base = started.handle.url;
    const folder = `${base}/mirror/stable/${board}/${version}`;
    expect(preview.stdout).toBe(
      [
        '#!ipxe',
        `echo cldist: metal-1, profile metal: Flatcar stable ${version} (${board})`,
        `kernel ${folder}/${pxeKernel} initrd=${pxeInitramfs} flatcar.first_boot=1 flatcar.autologin ignition.config.url=${base}/v1/boot/instances/metal-1/ignition?token=BOOT-TOKEN-MINTED-PER-REQUEST ignition.platform.id=metal`,
        `initrd ${folder}/${pxeInitramfs}`,
        'boot',
        '',
      ].join('\n'),
    );
    const kernelUrl = /^kernel (\S+)/m.exec(preview.stdout)?.[1] ?? '';
    const initrdUrl = /^initrd (\S+)/m.exec(preview.stdout)?.[1] ?? '';
    for (const [url, artifact] of [
      [kernelUrl, pxeKernel],
      [initrdUrl, pxeInitramfs],
    ] as const) {
      const served = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const stored = await started.handle.store.get(`stable/${board}/${version}/${artifact}`);
      const upstream = new Uint8Array(
        await (
          await fetch(`${sim.baseUrl.replace('{channel}', 'stable')}/${board}/${version}/${artifact}`)
        ).arrayBuffer(),
      );
      const verified = await started.handle.ledger.getArtifact({
        source: 'flatcar',
        channel: 'stable',
        board,
        version,
        artifact,
      });
      expect(verified?.state).toBe('verified');
      expect(served.byteLength).toBe(verified?.size);
      expect(sha512(served)).toBe(verified?.sha512);
      expect(Buffer.from(served).equals(Buffer.from(stored ?? new Uint8Array()))).toBe(true);
      expect(Buffer.from(served).equals(Buffer.from(upstream))).toBe(true);
    }
  });

  it("gives the machine its config: the script's Ignition URL, fetched by the real Ignition client", async () => {
    const script = await (
      await fetch(`${started.handle.url}/v1/boot/ipxe?mac=52-54-00-12-34-56&uuid=&serial=&hostname=`)
    ).text();
    const ignitionUrl = /ignition\.config\.url=(\S+)/.exec(script)?.[1] ?? '';
    expect(ignitionUrl).toMatch(/\/v1\/boot\/instances\/metal-1\/ignition\?token=[A-Za-z0-9_-]{43}$/);
    const run = await runIgnitionFetch(join(dir, 'ignition'), {
      ignition: { version: '3.0.0', config: { replace: { source: ignitionUrl } } },
    });
    expect(run.exitCode, run.output).toBe(0);
    expect(run.cached).toMatchObject({
      storage: { files: [expect.objectContaining({ path: '/etc/hostname' })] },
    });
    const status = await started.handle.status();
    expect(status.recentBoots?.[0]).toMatchObject({
      mac: '52-54-00-12-34-56',
      outcome: 'boot',
      instance: 'metal-1',
      profile: 'metal',
    });
  });

  it('serves boot and the mirror, and nothing else, on the --boot-listen listener, with URLs of its own', async () => {
    const boot = started.handle.bootUrl ?? '';
    expect(boot).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`${boot}/boot.ipxe`)).text()).toContain(
      `chain --autofree ${boot}/v1/boot/ipxe?mac=`,
    );
    const script = await (await fetch(`${boot}/v1/boot/ipxe?mac=52-54-00-12-34-56`)).text();
    const kernelUrl = /^kernel (\S+)/m.exec(script)?.[1] ?? '';
    expect(kernelUrl).toBe(`${boot}/mirror/stable/${board}/${version}/${pxeKernel}`);
    expect(script).toContain(`ignition.config.url=${boot}/v1/boot/instances/metal-1/ignition?token=`);
    const kernel = new Uint8Array(await (await fetch(kernelUrl)).arrayBuffer());
    const verified = await started.handle.ledger.getArtifact({
      source: 'flatcar',
      channel: 'stable',
      board,
      version,
      artifact: pxeKernel,
    });
    expect(sha512(kernel)).toBe(verified?.sha512);
    const config = await fetch(/ignition\.config\.url=(\S+)/.exec(script)?.[1] ?? '');
    expect(await config.json()).toEqual(instanceConfig);
    const admin = { Authorization: `Bearer ${started.handle.adminToken}` };
    for (const path of [
      '/',
      '/v1/status',
      '/v1/boot/profiles',
      '/v1/boot/preview?mac=x',
      '/v1/instances/metal-1',
      '/openstack/latest/user_data',
    ]) {
      expect((await fetch(`${boot}${path}`, { headers: admin })).status, path).toBe(404);
    }
  });

  it('refuses a CLI put whose selectors tie with another instance, after storing the config, and says how to fix it', async () => {
    const put = await cldist([
      'instances',
      'put',
      'metal-2',
      '--ignition',
      join(dir, 'instance.ign'),
      '--mac',
      mac,
      '--profile',
      'metal',
      ...connection,
    ]);
    expect(put.code).toBe(2);
    expect(put.stdout).toMatch(/^token: /);
    expect(put.stderr).toContain('the config of metal-2 is stored, but its boot selectors were refused');
    expect(put.stderr).toContain('instance "metal-1"');
    expect(put.stderr).toContain('cldist instances boot metal-2');
  });
});
