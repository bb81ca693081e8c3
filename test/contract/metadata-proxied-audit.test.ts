import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proxyHeaders, signAddress, signInstanceId } from '../../shared/metadata/proxy-signature.ts';
import { type MetadataHarness, metadataHarness, userIgnition } from '../support/metadata-harness.ts';

const secret = 'audit-proxy-secret-0123456789abcdef';

/** The API's proxied routes audit the address the proxy vouches for, and only a signed one. */
describe('proxied metadata audit', () => {
  let h: MetadataHarness;

  beforeAll(async () => {
    h = await metadataHarness({ proxySecrets: [secret] });
    expect((await h.put('node-1', { ignition: userIgnition('node-1'), ips: ['169.254.30.7'] })).status).toBe(
      201,
    );
  });
  afterAll(async () => {
    await h?.close();
  });

  async function fetchMetaData(address: string, addressSignature: string) {
    return h.api.request(
      '/v1/metadata/latest/meta-data/instance-id',
      {
        headers: {
          [proxyHeaders.instanceId]: 'node-1',
          [proxyHeaders.instanceIdSignature]: signInstanceId(secret, 'node-1'),
          [proxyHeaders.address]: address,
          [proxyHeaders.addressSignature]: addressSignature,
        },
      },
      { incoming: { socket: { remoteAddress: '10.1.2.3' } } },
    );
  }

  it('records the signed instance address, and the proxy peer when the address is not signed', async () => {
    expect((await fetchMetaData('169.254.30.7', signAddress(secret, '169.254.30.7'))).status).toBe(200);
    expect(
      (await fetchMetaData('169.254.99.99', signAddress('another-secret-0123456789', '169.254.99.99')))
        .status,
    ).toBe(200);
    await h.instances.flush();
    const { audit } = (await (await h.admin('/v1/instances/node-1')).json()) as {
      audit: { family: string; sourceIp: string }[];
    };
    const proxied = audit.filter((entry) => entry.family === 'proxy').map((entry) => entry.sourceIp);
    expect(proxied.sort()).toEqual(['10.1.2.3', '169.254.30.7']);
  });
});
