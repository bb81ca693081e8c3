import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BootRig, mirrorBaseUrl, startBootRig } from '../support/boot-harness.ts';

const config = {
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/motd', contents: { source: 'data:,hi' } }] },
};
const tokenPattern = '[A-Za-z0-9_-]{43}';
const kernel = `${mirrorBaseUrl}/stable/amd64-usr/4081.2.0/flatcar_production_pxe.vmlinuz`;
const initrd = `${mirrorBaseUrl}/stable/amd64-usr/4081.2.0/flatcar_production_pxe_image.cpio.gz`;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The exact iPXE script a matched machine gets, with the boot token as the only variable part. */
function ipxeFor(base: string, id: string, profile: string, args = 'flatcar.first_boot=1'): RegExp {
  return new RegExp(
    `^${escapeRegex(
      [
        '#!ipxe',
        `echo cldist: ${id}, profile ${profile}: Flatcar stable 4081.2.0 (amd64-usr)`,
        `kernel ${kernel} initrd=flatcar_production_pxe_image.cpio.gz ${args} ignition.config.url=${base}/v1/boot/instances/${id}/ignition?token=`,
      ].join('\n'),
    )}${tokenPattern}${escapeRegex([' ignition.platform.id=metal', `initrd ${initrd}`, 'boot', ''].join('\n'))}$`,
  );
}

function grubCheck(script: string, dir: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const file = join(dir, `grub-${Math.random().toString(16).slice(2)}.cfg`);
    writeFile(file, script).then(() =>
      execFile('grub-script-check', [file], { timeout: 10_000 }, (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1,
          output: `${stdout}${stderr}`,
        });
      }),
    );
  });
}

/** Debian's `ignition-validate`, the real client's own checks, on a config the service generated. */
function ignitionValidate(config: unknown, dir: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const file = join(dir, `installer-${Math.random().toString(16).slice(2)}.ign`);
    writeFile(file, JSON.stringify(config)).then(() =>
      execFile('ignition-validate', [file], { timeout: 10_000 }, (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1,
          output: `${stdout}${stderr}`,
        });
      }),
    );
  });
}

describe('bare-metal boot: profiles, selectors and scripts on the API', () => {
  let rig: BootRig;
  let dir: string;
  const base = () => rig.server.url;
  const ipxe = async (query: string) => {
    const response = await fetch(`${base()}/v1/boot/ipxe?${query}`);
    expect(response.status).toBe(200);
    return response.text();
  };
  const register = async (id: string, boot: Record<string, unknown>, oneTime = false) => {
    expect(
      (await rig.admin('PUT', `/v1/instances/${id}`, { ignition: JSON.stringify(config), oneTime })).status,
    ).toBeLessThan(300);
    return rig.admin('PUT', `/v1/instances/${id}/boot`, boot);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-boot-test-'));
    rig = await startBootRig();
    await rig.mirrorRelease('stable', '4081.2.0');
    expect((await rig.admin('PUT', '/v1/boot/profiles/ram', { channel: 'stable' })).status).toBe(201);
  });

  afterAll(async () => {
    await rig?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  describe('profiles', () => {
    it('refuses a pinned version that is not mirrored and verified, naming it and what to do', async () => {
      const response = await rig.admin('PUT', '/v1/boot/profiles/pinned', {
        channel: 'stable',
        version: '9999.0.0',
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { path: string; message: string } };
      expect(body.error.path).toBe('$.version');
      expect(body.error.message).toContain('stable/amd64-usr 9999.0.0 is not mirrored and verified');
      expect(body.error.message).toContain('flatcar_production_pxe.vmlinuz: not mirrored');
      expect((await rig.admin('GET', '/v1/boot/profiles/pinned')).status).toBe(404);
    });

    it('refuses a pinned version whose artifacts are claimed but not verified yet', async () => {
      const release = { source: 'flatcar', channel: 'beta', board: 'amd64-usr', version: '4100.0.0' };
      await rig.ledger.claimRelease(release, [
        {
          name: 'flatcar_production_pxe.vmlinuz',
          required: true,
          url: 'http://o/k',
          signatureUrl: 'http://o/k.sig',
        },
      ]);
      const response = await rig.admin('PUT', '/v1/boot/profiles/beta-pin', {
        channel: 'beta',
        version: '4100.0.0',
      });
      expect(response.status).toBe(400);
      expect(await response.text()).toContain('flatcar_production_pxe.vmlinuz: pending');
    });

    it('accepts a pinned verified version, and lists, gets and deletes profiles', async () => {
      const put = await rig.admin('PUT', '/v1/boot/profiles/pinned-ok', {
        channel: 'stable',
        version: '4081.2.0',
        kernelArgs: ['flatcar.autologin', 'console=ttyS0,115200n8'],
      });
      expect(put.status).toBe(201);
      const list = (await (await rig.admin('GET', '/v1/boot/profiles')).json()) as {
        profiles: { name: string }[];
      };
      expect(list.profiles.map((p) => p.name)).toContain('pinned-ok');
      expect((await rig.admin('DELETE', '/v1/boot/profiles/pinned-ok')).status).toBe(204);
      expect((await rig.admin('DELETE', '/v1/boot/profiles/pinned-ok')).status).toBe(404);
    });

    it.each([
      [{ channel: 'nightly' }, '$.channel', 'is not mirrored'],
      [{ channel: 'stable', kernelArgs: ['a b'] }, '$.kernelArgs[0]', 'no spaces'],
      [
        { channel: 'stable', kernelArgs: ['ignition.config.url=http://x'] },
        '$.kernelArgs[0]',
        'set by cldist',
      ],
      [{ channel: 'stable', install: { disk: 'sda' } }, '$.install.disk', 'block device'],
      [{ channel: 'stable', extra: 1 }, '$', 'extra'],
    ])('refuses %j at %s', async (body, path, text) => {
      const response = await rig.admin('PUT', '/v1/boot/profiles/bad', body);
      expect(response.status).toBe(400);
      const answer = (await response.json()) as { error: { path: string; message: string } };
      expect(answer.error.path).toBe(path);
      expect(answer.error.message).toContain(text);
    });
  });

  describe('selectors and scripts', () => {
    it("serves the chain script that asks for the machine's own script", async () => {
      const response = await fetch(`${base()}/boot.ipxe`);
      expect(await response.text()).toBe(
        [
          '#!ipxe',
          `chain --autofree ${base()}/v1/boot/ipxe?mac=\${net0/mac:hexhyp}&uuid=\${uuid}&serial=\${serial:uristring}&hostname=\${hostname:uristring}`,
          '',
        ].join('\n'),
      );
    });

    it('matches a MAC saved in colon form to the hexhyp form iPXE sends, with the exact script', async () => {
      expect((await register('by-mac', { mac: '52:54:00:AA:00:01', profile: 'ram' })).status).toBe(200);
      expect(await ipxe('mac=52-54-00-aa-00-01&uuid=&serial=&hostname=')).toMatch(
        ipxeFor(base(), 'by-mac', 'ram'),
      );
    });

    it.each([
      [
        'uuid',
        { uuid: '{8A4E1C2B-0000-4000-8000-00000000000A}' },
        'uuid=8a4e1c2b-0000-4000-8000-00000000000a',
      ],
      ['serial', { serial: 'SN-778' }, 'serial=SN-778'],
      ['hostname', { hostname: 'Node7.Example' }, 'hostname=node7.example'],
      ['labels', { labels: { rack: 'r9', role: 'store' } }, 'role=store&rack=r9&other=x'],
      [
        'mac and uuid',
        { mac: '525400aa0009', uuid: '8a4e1c2b-0000-4000-8000-000000000009' },
        'mac=52-54-00-aa-00-09&uuid=8A4E1C2B-0000-4000-8000-000000000009',
      ],
    ])('matches by %s', async (name, selectors, query) => {
      const id = `sel-${name.replaceAll(' ', '-')}`;
      expect((await register(id, { ...selectors, profile: 'ram' })).status).toBe(200);
      expect(await ipxe(query)).toMatch(ipxeFor(base(), id, 'ram'));
      const grub = await (await fetch(`${base()}/v1/boot/grub?${query}`)).text();
      expect(grub).toContain(`menuentry 'cldist: ${id}, profile ram: Flatcar stable 4081.2.0 (amd64-usr)' {`);
      expect(await grubCheck(grub, dir)).toMatchObject({ code: 0 });
    });

    it('refuses a tie at save, naming the other record, and keeps the first', async () => {
      expect((await register('tie-a', { mac: '52-54-00-aa-00-10', profile: 'ram' })).status).toBe(200);
      const second = await register('tie-b', { mac: '52:54:00:aa:00:10', profile: 'ram' });
      expect(second.status).toBe(409);
      const body = (await second.json()) as { error: { code: string; holder: string; message: string } };
      expect(body.error).toMatchObject({ code: 'selector-tie', holder: 'tie-a' });
      expect(body.error.message).toContain('mac=52-54-00-aa-00-10');
      expect(await ipxe('mac=52-54-00-aa-00-10')).toMatch(ipxeFor(base(), 'tie-a', 'ram'));
    });

    it('refuses labels that a request could carry both of at the same specificity', async () => {
      expect(
        (await register('lab-a', { mac: '52-54-00-aa-00-11', labels: { rack: '7' }, profile: 'ram' })).status,
      ).toBe(200);
      const tie = await register('lab-b', {
        mac: '52-54-00-aa-00-11',
        labels: { role: 'web' },
        profile: 'ram',
      });
      expect(tie.status).toBe(409);
      expect(((await tie.json()) as { error: { holder: string } }).error.holder).toBe('lab-a');
      expect(
        (await register('lab-c', { mac: '52-54-00-aa-00-11', labels: { rack: '8' }, profile: 'ram' })).status,
      ).toBe(200);
      expect((await register('lab-d', { mac: '52-54-00-aa-00-11', profile: 'ram' })).status).toBe(200);
      expect(await ipxe('mac=52-54-00-aa-00-11&rack=7')).toMatch(ipxeFor(base(), 'lab-a', 'ram'));
      expect(await ipxe('mac=52-54-00-aa-00-11&rack=8')).toMatch(ipxeFor(base(), 'lab-c', 'ram'));
      expect(await ipxe('mac=52-54-00-aa-00-11&rack=9')).toMatch(ipxeFor(base(), 'lab-d', 'ram'));
    });

    it('lets the more specific record win: a MAC over a UUID, a UUID over labels', async () => {
      expect(
        (await register('spec-uuid', { uuid: '8a4e1c2b-0000-4000-8000-000000000020', profile: 'ram' }))
          .status,
      ).toBe(200);
      expect((await register('spec-mac', { mac: '52-54-00-aa-00-20', profile: 'ram' })).status).toBe(200);
      expect((await register('spec-label', { labels: { pool: 'p20' }, profile: 'ram' })).status).toBe(200);
      const both = 'mac=52-54-00-aa-00-20&uuid=8a4e1c2b-0000-4000-8000-000000000020&pool=p20';
      expect(await ipxe(both)).toMatch(ipxeFor(base(), 'spec-mac', 'ram'));
      expect(await ipxe('uuid=8a4e1c2b-0000-4000-8000-000000000020&pool=p20')).toMatch(
        ipxeFor(base(), 'spec-uuid', 'ram'),
      );
      expect(await ipxe('pool=p20')).toMatch(ipxeFor(base(), 'spec-label', 'ram'));
    });

    it('moves a record to new selectors, so the old ones no longer match it', async () => {
      expect((await register('mover', { mac: '52-54-00-aa-00-30', profile: 'ram' })).status).toBe(200);
      expect(
        (await rig.admin('PUT', '/v1/instances/mover/boot', { mac: '52-54-00-aa-00-31', profile: 'ram' }))
          .status,
      ).toBe(200);
      expect(await ipxe('mac=52-54-00-aa-00-30')).toContain('no instance matches this machine');
      expect((await register('taker', { mac: '52-54-00-aa-00-30', profile: 'ram' })).status).toBe(200);
    });

    it.each([
      [{ mac: '01:00:5e:00:00:01', profile: 'ram' }, '$.mac', 'multicast'],
      [{ mac: 'zz:00:5e:00:00:01', profile: 'ram' }, '$.mac', 'not a MAC address'],
      [{ uuid: '00000000-0000-0000-0000-000000000000', profile: 'ram' }, '$.uuid', 'placeholder'],
      [{ serial: 'To Be Filled By O.E.M.', profile: 'ram' }, '$.serial', 'placeholder'],
      [{ labels: { mac: 'x' }, profile: 'ram' }, '$.labels.mac', 'selector of its own'],
      [{ profile: 'ram' }, '$', 'at least one selector'],
      [{ mac: '52-54-00-aa-00-40', profile: 'nope' }, '$.profile', 'no boot profile'],
    ])('refuses the selection %j at %s', async (body, path, text) => {
      const response = await register('bad-sel', body);
      expect(response.status).toBe(400);
      const answer = (await response.json()) as { error: { path: string; message: string } };
      expect(answer.error.path).toBe(path);
      expect(answer.error.message).toContain(text);
    });

    it('tells an unknown machine why, and asks again with the same facts after the delay', async () => {
      const odd = await (await fetch(`${base()}/v1/boot/grub?serial=a'b%22c%24d%3Be&rack=x`)).text();
      expect(await grubCheck(odd, dir)).toMatchObject({ code: 0 });
      expect(odd).toContain("configfile '(http,");
      expect(odd).not.toMatch(/a'b/);
      expect(await ipxe('mac=52-54-00-ff-00-01&uuid=&serial=%24x&hostname=')).toBe(
        [
          '#!ipxe',
          'echo cldist: no instance matches this machine (mac=52-54-00-ff-00-01 serial=?x)',
          'echo cldist: register it, e.g. cldist instances put ID --ignition FILE --profile NAME --mac 52-54-00-ff-00-01',
          'echo cldist: asking again in 30 s',
          'sleep 30',
          `chain --replace --autofree ${base()}/v1/boot/ipxe?mac=52-54-00-ff-00-01&serial=%24x`,
          '',
        ].join('\n'),
      );
      const recent = rig.recent.list()[0];
      expect(recent).toMatchObject({ mac: '52-54-00-ff-00-01', outcome: 'unknown', loader: 'ipxe' });
    });

    it('writes GRUB scripts that grub-script-check accepts, booting the same objects', async () => {
      const grub = await (await fetch(`${base()}/v1/boot/grub?mac=52:54:00:aa:00:01`)).text();
      const host = new URL(mirrorBaseUrl).host;
      expect(grub).toMatch(
        new RegExp(
          `^${escapeRegex(
            [
              'insmod http',
              'set default=0',
              'set timeout=0',
              "menuentry 'cldist: by-mac, profile ram: Flatcar stable 4081.2.0 (amd64-usr)' {",
              "  echo 'Loading kernel'",
              `  linux '(http,${host})/mirror/stable/amd64-usr/4081.2.0/flatcar_production_pxe.vmlinuz' 'flatcar.first_boot=1' 'ignition.config.url=${base()}/v1/boot/instances/by-mac/ignition?token=`,
            ].join('\n'),
          )}${tokenPattern}${escapeRegex(
            [
              "' 'ignition.platform.id=metal'",
              "  echo 'Loading initramfs'",
              `  initrd '(http,${host})/mirror/stable/amd64-usr/4081.2.0/flatcar_production_pxe_image.cpio.gz'`,
              '}',
              '',
            ].join('\n'),
          )}$`,
        ),
      );
      expect(await grubCheck(grub, dir)).toMatchObject({ code: 0 });
      const unknown = await (await fetch(`${base()}/v1/boot/grub?mac=52:54:00:ff:00:02`)).text();
      expect(unknown).toContain(
        `configfile '(http,${new URL(base()).host})/v1/boot/grub?mac=52-54-00-ff-00-02'`,
      );
      expect(await grubCheck(unknown, dir)).toMatchObject({ code: 0 });
      expect(await grubCheck('menuentry {', dir)).not.toMatchObject({ code: 0 });
    });
  });

  describe('boot tokens', () => {
    const tokenUrl = (script: string) => /ignition\.config\.url=(\S+)/.exec(script)?.[1] ?? '';

    it("serves the instance config through the script's URL, every time while the token lives", async () => {
      expect((await register('tok-many', { mac: '52-54-00-bb-00-01', profile: 'ram' })).status).toBe(200);
      const url = tokenUrl(await ipxe('mac=52-54-00-bb-00-01'));
      for (let i = 0; i < 2; i++) {
        const response = await fetch(url);
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual(config);
      }
      expect((await fetch(url.replace(/token=.{4}/, 'token=AAAA'))).status).toBe(404);
    });

    it('with a one-time boot token, serves the config once only', async () => {
      expect(
        (await register('tok-once', { mac: '52-54-00-bb-00-02', profile: 'ram', oneTimeToken: true })).status,
      ).toBe(200);
      const url = tokenUrl(await ipxe('mac=52-54-00-bb-00-02'));
      expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
      const results = await Promise.all([fetch(url), fetch(url), fetch(url)]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 404, 404]);
      expect((await fetch(url)).status).toBe(404);
      const next = tokenUrl(await ipxe('mac=52-54-00-bb-00-02'));
      expect(next).not.toBe(url);
      expect((await fetch(next)).status).toBe(200);
    });

    it('installs to disk: installer config, then the instance config, then the next boot is local', async () => {
      const profile = { channel: 'stable', version: '4081.2.0', install: { disk: '/dev/sda' } };
      expect((await rig.admin('PUT', '/v1/boot/profiles/disk', profile)).status).toBe(201);
      expect((await register('installer', { mac: '52-54-00-bb-00-03', profile: 'disk' })).status).toBe(200);
      const url = tokenUrl(await ipxe('mac=52-54-00-bb-00-03'));
      const installer = (await (await fetch(url)).json()) as {
        storage: { files: { path: string; contents: { source: string } }[] };
        systemd: { units: { contents: string }[] };
      };
      const validated = await ignitionValidate(installer, dir);
      expect(validated.code, validated.output).toBe(0);
      const file = installer.storage.files[0];
      expect(file?.path).toBe('/opt/cldist/instance.ign');
      expect(file?.contents.source).toBe(`${url}&stage=installed`);
      expect(installer.systemd.units[0]?.contents).toContain(
        `ExecStart=/usr/bin/flatcar-install -b ${mirrorBaseUrl}/stable/amd64-usr -C stable -V 4081.2.0 -B amd64-usr -o "" -d /dev/sda -i /opt/cldist/instance.ign`,
      );
      const installed = await fetch(file?.contents.source ?? '');
      expect(await installed.json()).toEqual(config);
      expect(await ipxe('mac=52-54-00-bb-00-03')).toMatch(
        /^#!ipxe\necho cldist: instance installer was installed to disk at \S+, booting the next device\nexit\n$/,
      );
    });

    it.each([
      ['the ledger store', false],
      ['the one-machine cache', true],
    ])("forgets a deleted instance's selectors at boot (%s), never sticking on it", async (_name, cached) => {
      const other = await startBootRig({}, { cached });
      try {
        await other.mirrorRelease('stable', '4081.2.0');
        await other.admin('PUT', '/v1/boot/profiles/ram', { channel: 'stable' });
        await other.admin('PUT', '/v1/instances/gone', { ignition: JSON.stringify(config) });
        expect(
          (await other.admin('PUT', '/v1/instances/gone/boot', { mac: '52-54-00-dd-00-01', profile: 'ram' }))
            .status,
        ).toBe(200);
        const ask = async () =>
          (await fetch(`${other.server.url}/v1/boot/ipxe?mac=52-54-00-dd-00-01`)).text();
        expect(await ask()).toContain('ignition.config.url=');
        expect((await other.admin('DELETE', '/v1/instances/gone')).status).toBe(204);
        await other.admin('PUT', '/v1/instances/gone', { ignition: JSON.stringify(config) });
        const answers = [await ask(), await ask()];
        for (const answer of answers) expect(answer).not.toContain('ignition.config.url=');
        expect(answers[1]).toContain('no instance matches this machine');
        expect(
          (await other.admin('PUT', '/v1/instances/gone/boot', { mac: '52-54-00-dd-00-01', profile: 'ram' }))
            .status,
        ).toBe(200);
        expect(await ask()).toContain('ignition.config.url=');
      } finally {
        await other.close();
      }
    });

    it('boots unknown machines with the default profile only when one is set, without an Ignition URL', async () => {
      const withDefault = await startBootRig({ boot: { mirrorBaseUrl, defaultProfile: 'ram' } });
      try {
        await withDefault.mirrorRelease('stable', '4081.2.0');
        await withDefault.admin('PUT', '/v1/boot/profiles/ram', { channel: 'stable' });
        const response = await fetch(`${withDefault.server.url}/v1/boot/ipxe?mac=52-54-00-cc-00-01`);
        expect(await response.text()).toBe(
          [
            '#!ipxe',
            'echo cldist: unknown machine, default profile ram: Flatcar stable 4081.2.0 (amd64-usr), no Ignition config',
            `kernel ${kernel} initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 ignition.platform.id=metal`,
            `initrd ${initrd}`,
            'boot',
            '',
          ].join('\n'),
        );
      } finally {
        await withDefault.close();
      }
    });
  });
});
