import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  baseIgnition,
  type MetadataHarness,
  mergedSources,
  metadataHarness,
  userIgnition,
} from '../support/metadata-harness.ts';
import { ed25519PublicKey } from '../support/ssh-keys.ts';

const key = ed25519PublicKey('alice@laptop');

describe('metadata routes on the listener (identity by source address)', () => {
  let h: MetadataHarness;

  beforeAll(async () => {
    h = await metadataHarness();
    const put = await h.put('node-1', {
      ignition: userIgnition('node-1'),
      ips: ['169.254.10.7', 'FE80::0:1'],
      publicIp: '203.0.113.7',
      hostname: 'node-1.example.net',
      sshKeys: [key],
      instanceType: 'm1.small',
      zone: 'eu-west-1a',
      attributes: { role: 'web', 'rack.row': '7' },
    });
    expect(put.status).toBe(201);
    expect(
      (await h.put('cc-1', { cloudConfig: '#cloud-config\nhostname: cc\n', ips: ['169.254.10.9'] })).status,
    ).toBe(201);
  });

  afterAll(async () => {
    await h?.close();
  });

  it('serves the OpenStack version list, file list and documents', async () => {
    const versions = await (await h.fromAddress('169.254.10.7', '/openstack')).text();
    expect(versions.split('\n')).toContain('2012-08-10');
    expect(versions.split('\n').at(-1)).toBe('latest');
    expect(await (await h.fromAddress('169.254.10.7', '/openstack/2012-08-10/')).text()).toBe(
      'meta_data.json\nnetwork_data.json\nuser_data\nvendor_data.json',
    );
    const meta = await (await h.fromAddress('169.254.10.7', '/openstack/latest/meta_data.json')).json();
    expect(meta).toMatchObject({
      uuid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'node-1.example.net',
      hostname: 'node-1.example.net',
      public_keys: { 'key-0': key },
      availability_zone: 'eu-west-1a',
      launch_index: 0,
      meta: { role: 'web', 'rack.row': '7' },
    });
    const network = await (await h.fromAddress('169.254.10.7', '/openstack/latest/network_data.json')).json();
    expect(network.networks.map((n: { ip_address: string }) => n.ip_address)).toEqual([
      '169.254.10.7',
      'fe80::1',
    ]);
    expect(await (await h.fromAddress('169.254.10.7', '/openstack/latest/vendor_data.json')).json()).toEqual(
      {},
    );
  });

  it('serves user_data as the wrapper that merges the base config and the untouched user config', async () => {
    const response = await h.fromAddress('169.254.10.7', '/openstack/latest/user_data');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/vnd.coreos.ignition+json');
    const body = await response.text();
    expect(JSON.parse(body).ignition.version).toBe('3.0.0');
    expect(mergedSources(body)).toEqual([baseIgnition, userIgnition('node-1')]);
  });

  it('identifies an IPv6 peer in any spelling, and an IPv4-mapped peer as its IPv4 address', async () => {
    expect((await h.fromAddress('fe80:0000::0001', '/latest/meta-data/instance-id')).status).toBe(200);
    const mapped = await h.fromAddress('::ffff:169.254.10.7', '/latest/meta-data/instance-id');
    expect(await mapped.text()).toBe('node-1');
  });

  it('serves the EC2 meta-data tree with directory listings', async () => {
    const get = async (path: string) => {
      const response = await h.fromAddress('169.254.10.7', path);
      return { status: response.status, text: await response.text() };
    };
    const root = await get('/latest/meta-data/');
    expect(root.text.split('\n')).toEqual(
      expect.arrayContaining([
        'instance-id',
        'hostname',
        'local-hostname',
        'local-ipv4',
        'public-ipv4',
        'public-keys/',
        'instance-type',
        'placement/',
      ]),
    );
    expect(await get('/2009-04-04/meta-data/instance-id')).toEqual({ status: 200, text: 'node-1' });
    expect(await get('/latest/meta-data/hostname')).toEqual({ status: 200, text: 'node-1.example.net' });
    expect(await get('/latest/meta-data/local-ipv4')).toEqual({ status: 200, text: '169.254.10.7' });
    expect(await get('/latest/meta-data/public-ipv4')).toEqual({ status: 200, text: '203.0.113.7' });
    expect(await get('/latest/meta-data/public-keys')).toEqual({ status: 200, text: '0=key-0' });
    expect(await get('/latest/meta-data/public-keys/0/')).toEqual({ status: 200, text: 'openssh-key' });
    expect(await get('/latest/meta-data/public-keys/0/openssh-key')).toEqual({ status: 200, text: key });
    expect(await get('/latest/meta-data/instance-type')).toEqual({ status: 200, text: 'm1.small' });
    expect(await get('/latest/meta-data/placement/availability-zone')).toEqual({
      status: 200,
      text: 'eu-west-1a',
    });
    expect(await get('/latest/meta-data/tags/instance/role')).toEqual({ status: 200, text: 'web' });
    const document = JSON.parse((await get('/latest/dynamic/instance-identity/document')).text);
    expect(document).toMatchObject({
      instanceId: 'node-1',
      region: 'eu-west-1',
      availabilityZone: 'eu-west-1a',
      privateIp: '169.254.10.7',
    });
    expect(mergedSources((await get('/2019-10-01/user-data')).text)[1]).toEqual(userIgnition('node-1'));
  });

  it('answers 404 for unknown paths, versions and registered-but-absent data', async () => {
    const paths = [
      '/openstack/1999-01-01/user_data',
      '/openstack/latest/nope.json',
      '/openstack/latest/user_data/extra',
      '/1999-01-01/meta-data/hostname',
      '/latest/meta-data/nope',
      '/latest/meta-data/public-keys/1/openssh-key',
      '/latest/meta-data/hostname/deeper',
      '/latest/meta-data/__proto__',
      '/latest/meta-data/constructor',
      '/latest/dynamic/nope',
      '/v1/instances/node-1',
    ];
    for (const path of paths) {
      expect((await h.fromAddress('169.254.10.7', path)).status, path).toBe(404);
    }
    expect((await h.fromAddress('169.254.10.9', '/latest/meta-data/public-keys')).status).toBe(404);
  });

  it('gives an unregistered address nothing at all', async () => {
    for (const path of [
      '/openstack/latest/user_data',
      '/openstack/latest/meta_data.json',
      '/latest/user-data',
      '/latest/meta-data/',
      '/latest/dynamic/instance-identity/document',
    ]) {
      const response = await h.fromAddress('169.254.99.99', path);
      expect(response.status, path).toBe(404);
      expect(await response.text()).not.toMatch(/node-1/);
    }
  });

  it('serves cloud-config unchanged and on every boot (never used up)', async () => {
    for (let boot = 0; boot < 3; boot++) {
      const response = await h.fromAddress('169.254.10.9', '/2009-04-04/user-data');
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('#cloud-config\nhostname: cc\n');
    }
  });

  it('uses up a one-time Ignition config on its first 200, whichever route serves it', async () => {
    const first = await (
      await h.put('once-a', { ignition: userIgnition('a'), oneTime: true, ips: ['169.254.20.1'] })
    ).json();
    expect(
      (await h.fromAddress('169.254.20.1', '/openstack/latest/user_data', { method: 'HEAD' })).status,
    ).toBe(200);
    expect((await h.fromAddress('169.254.20.1', '/openstack/latest/user_data')).status).toBe(200);
    expect((await h.fromAddress('169.254.20.1', '/latest/user-data')).status).toBe(404);
    expect((await h.api.request(`/v1/instances/once-a/ignition?token=${first.token}`)).status).toBe(404);

    const second = await (
      await h.put('once-b', { ignition: userIgnition('b'), oneTime: true, ips: ['169.254.20.2'] })
    ).json();
    expect((await h.api.request(`/v1/instances/once-b/ignition?token=${second.token}`)).status).toBe(200);
    expect((await h.fromAddress('169.254.20.2', '/openstack/latest/user_data')).status).toBe(404);
    expect((await h.fromAddress('169.254.20.2', '/latest/meta-data/instance-id')).status).toBe(200);
  });

  it('audits metadata fetches with the route family, path and source address', async () => {
    await h.fromAddress('169.254.10.7', '/latest/meta-data/hostname');
    await h.instances.flush();
    const { audit } = await (await h.admin('/v1/instances/node-1')).json();
    expect(audit).toContainEqual(
      expect.objectContaining({
        route: 'ignition',
        family: 'openstack',
        path: '/openstack/latest/user_data',
        sourceIp: '169.254.10.7',
        outcome: 'served',
      }),
    );
    expect(audit).toContainEqual(
      expect.objectContaining({ route: 'metadata', family: 'ec2', path: '/latest/meta-data/hostname' }),
    );
    expect(audit).toContainEqual(expect.objectContaining({ family: 'ec2', sourceIp: 'fe80::1' }));
  });

  it('expires configs for the metadata routes as for the token route', async () => {
    await h.put('expiring', {
      ignition: userIgnition('e'),
      ips: ['169.254.20.3'],
      expiresAt: '2026-06-02T00:00:00Z',
    });
    expect((await h.fromAddress('169.254.20.3', '/latest/user-data')).status).toBe(200);
    h.setNow(new Date('2026-06-03T00:00:00Z'));
    try {
      expect((await h.fromAddress('169.254.20.3', '/latest/user-data')).status).toBe(404);
      expect((await h.fromAddress('169.254.20.3', '/latest/meta-data/instance-id')).status).toBe(200);
    } finally {
      h.setNow(new Date('2026-06-01T00:00:00Z'));
    }
  });
});
