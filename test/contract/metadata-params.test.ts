import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.ts';
import {
  baseIgnition,
  type MetadataHarness,
  mergedSources,
  metadataHarness,
  userIgnition,
} from '../support/metadata-harness.ts';
import { ed25519PublicKey, rsaPublicKey } from '../support/ssh-keys.ts';

describe('instance parameters in the admin API', () => {
  let h: MetadataHarness;

  beforeAll(async () => {
    h = await metadataHarness({ config: { platform: { baseIgnition }, api: { allowLegacyIgnition: true } } });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('refuses bad parameters with 400, naming the field', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ips: ['300.1.1.1'] }, '$.ips[0]', /not an IPv4 or IPv6 address/],
      [{ ips: ['169.254.169.254'] }, '$.ips[0]', /metadata service address/],
      [{ ips: ['10.0.0.1', '10.0.0.1'] }, '$.ips', /listed twice/],
      [{ publicIp: 'localhost' }, '$.publicIp', /not an IPv4/],
      [{ hostname: '-bad-.example' }, '$.hostname', /label "-bad-"/],
      [{ hostname: 'a'.repeat(254) }, '$.hostname', /1 to 253/],
      [{ sshKeys: ['ssh-ed25519 AAAA'] }, '$.sshKeys[0]', /not an OpenSSH public key/],
      [{ sshKeys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] }, '$.sshKeys[0]', /private key/],
      [
        { sshKeys: [ed25519PublicKey().replace('ssh-ed25519', 'ssh-rsa')] },
        '$.sshKeys[0]',
        /not a ssh-rsa key/,
      ],
      [{ instanceType: 'm1 small' }, '$.instanceType', /instance type/],
      [{ zone: '' }, '$.zone', /zone/],
      [{ attributes: { 'bad/key': 'x' } }, '$.attributes.bad/key', /key of letters/],
      [{ attributes: { ok: 'line\nbreak' } }, '$.attributes.ok', /control characters/],
    ];
    for (const [fields, path, message] of cases) {
      const response = await h.put('bad', { ignition: userIgnition('x'), ...fields });
      expect(response.status, JSON.stringify(fields)).toBe(400);
      const { error } = await response.json();
      expect(error.path, JSON.stringify(fields)).toBe(path);
      expect(error.message).toMatch(message);
    }
    expect((await h.admin('/v1/instances/bad')).status).toBe(404);
  });

  it('refuses a one-time cloud-config: it is read on every boot', async () => {
    const response = await h.put('cc', { cloudConfig: '#cloud-config\n', oneTime: true });
    expect(response.status).toBe(400);
    expect((await response.json()).error.path).toBe('$.oneTime');
  });

  it('accepts RSA and Ed25519 keys and shows the parameters, never the token', async () => {
    const keys = [ed25519PublicKey(), rsaPublicKey()];
    expect(
      (await h.put('keys', { ignition: userIgnition('k'), sshKeys: keys, ips: ['10.1.0.1'] })).status,
    ).toBe(201);
    const shown = await (await h.admin('/v1/instances/keys')).json();
    expect(shown.params).toEqual({ ips: ['10.1.0.1'], sshKeys: keys, attributes: {} });
    expect(JSON.stringify(shown)).not.toMatch(/tokenHash|bodyKey/);
  });

  it('gives an address to one instance only: 409 names the holder', async () => {
    expect((await h.put('holder', { ignition: userIgnition('h'), ips: ['10.2.0.1'] })).status).toBe(201);
    const conflict = await h.put('taker', { ignition: userIgnition('t'), ips: ['10.2.0.2', '10.2.0.1'] });
    expect(conflict.status).toBe(409);
    expect((await conflict.json()).error).toMatchObject({
      code: 'address-in-use',
      holder: 'holder',
      path: '$.ips',
    });
    expect((await h.admin('/v1/instances/taker')).status).toBe(404);
    // The conflicting PUT kept none of its claims: 10.2.0.2 is free for anyone.
    expect((await h.put('other', { ignition: userIgnition('o'), ips: ['10.2.0.2'] })).status).toBe(201);
    expect(await (await h.fromAddress('10.2.0.1', '/latest/meta-data/instance-id')).text()).toBe('holder');
  });

  it('lets exactly one of two racing PUTs take an address', async () => {
    const results = await Promise.all(
      ['race-a', 'race-b', 'race-c'].map((id) =>
        h.put(id, { ignition: userIgnition(id), ips: ['10.3.0.1'] }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409]);
    const winner = ['race-a', 'race-b', 'race-c'][results.findIndex((r) => r.status === 201)];
    expect(await (await h.fromAddress('10.3.0.1', '/latest/meta-data/instance-id')).text()).toBe(winner);
  });

  it('frees addresses a re-PUT drops and a DELETE removes', async () => {
    await h.put('mover', { ignition: userIgnition('m'), ips: ['10.4.0.1', '10.4.0.2'] });
    await h.put('mover', { ignition: userIgnition('m'), ips: ['10.4.0.2'] });
    expect((await h.fromAddress('10.4.0.1', '/latest/meta-data/instance-id')).status).toBe(404);
    expect((await h.put('next', { ignition: userIgnition('n'), ips: ['10.4.0.1'] })).status).toBe(201);
    expect((await h.admin('/v1/instances/mover', { method: 'DELETE' })).status).toBe(204);
    expect((await h.fromAddress('10.4.0.2', '/latest/meta-data/instance-id')).status).toBe(404);
    expect((await h.put('next2', { ignition: userIgnition('n'), ips: ['10.4.0.2'] })).status).toBe(201);
  });

  it('merges the base config into token-route fetches too, and serves 2.x configs as they are', async () => {
    const put = await (await h.put('tok', { ignition: userIgnition('tok') })).json();
    const served = await h.api.request(`/v1/instances/tok/ignition?token=${put.token}`);
    expect(mergedSources(await served.text())).toEqual([baseIgnition, userIgnition('tok')]);
    expect(served.headers.get('etag')).not.toBe(put.etag);
    const legacy = { ignition: { version: '2.2.0' } };
    const old = await (await h.put('legacy', { ignition: legacy })).json();
    expect(old.warnings).toContainEqual({
      path: '$.ignition.version',
      message: expect.stringMatching(/not merged into a 2\.x config/),
    });
    expect(
      JSON.parse(await (await h.api.request(`/v1/instances/legacy/ignition?token=${old.token}`)).text()),
    ).toEqual(legacy);
  });

  it('lists instance records in id order, a page at a time', async () => {
    const first = await h.instances.list(2);
    expect(first.records.map((r) => r.id)).toEqual(['holder', 'keys']);
    expect(first.next).toBe('keys');
    const second = await h.instances.list(2, first.next);
    expect(second.records[0]?.id).toBe('legacy');
    const all = await h.instances.list(100);
    expect(all.next).toBeUndefined();
    expect(all.records.map((r) => r.id)).toEqual([...all.records.map((r) => r.id)].sort());
  });

  it('serves a wrapper ignition-validate accepts', async () => {
    await h.put('valid', { ignition: userIgnition('v'), ips: ['10.5.0.1'] });
    const body = await (await h.fromAddress('10.5.0.1', '/openstack/latest/user_data')).text();
    const dir = await mkdtemp(join(tmpdir(), 'cldist-wrapper-'));
    try {
      await writeFile(join(dir, 'wrapper.ign'), body);
      const result = await new Promise<{ code: number; output: string }>((resolve) =>
        execFile(
          'ignition-validate',
          [join(dir, 'wrapper.ign')],
          { timeout: 20_000 },
          (error, stdout, stderr) =>
            resolve({ code: error === null ? 0 : Number(error.code ?? -1), output: stdout + stderr }),
        ),
      );
      expect(result.code, result.output).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('platform.baseIgnition in the config', () => {
  it('is validated at start like a user config, naming the bad field', () => {
    expect(() => parseConfig({ platform: { baseIgnition: { ignition: { version: '2.2.0' } } } })).toThrow(
      /platform\.baseIgnition: ignition\.version: spec 2\.2\.0 is a legacy 2\.x version/,
    );
    expect(() =>
      parseConfig({
        platform: { baseIgnition: { ignition: { version: '3.3.0' }, storage: { files: [{ path: 'rel' }] } } },
      }),
    ).toThrow(/platform\.baseIgnition: storage\.files\[0\]\.path: expected an absolute path/);
    expect(() => parseConfig({ platform: { baseIgnition: 'not an object' } })).toThrow(
      /platform\.baseIgnition/,
    );
    expect(parseConfig({ platform: { baseIgnition } }).platform.baseIgnition).toEqual(baseIgnition);
  });
});
