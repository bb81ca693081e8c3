import { createServer } from 'node:net';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeAwsClients } from '../../shared/aws-clients.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { signAddress, signInstanceId } from '../../shared/metadata/proxy-signature.ts';
import {
  type MetadataHarness,
  mergedSources,
  metadataHarness,
  userIgnition,
} from '../support/metadata-harness.ts';

const secret = 'current-proxy-secret-0123456789';
const oldSecret = 'previous-proxy-secret-987654321';

function signed(id: string, key = secret): Record<string, string> {
  return { 'X-Instance-ID': id, 'X-Instance-ID-Signature': signInstanceId(key, id) };
}

describe('IMDSv2 sessions on the listener', () => {
  let h: MetadataHarness;
  let strict: MetadataHarness;
  const token = (address: string, ttl: string, target = h, extra: Record<string, string> = {}) =>
    target.fromAddress(address, '/latest/api/token', {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': ttl, ...extra },
    });

  beforeAll(async () => {
    h = await metadataHarness();
    strict = await metadataHarness({ config: { metadata: { requireImdsV2: true } } });
    for (const target of [h, strict]) {
      await target.put('v2-a', { ignition: userIgnition('a'), ips: ['169.254.30.1'] });
      await target.put('v2-b', { ignition: userIgnition('b'), ips: ['169.254.30.2'] });
    }
  });

  afterAll(async () => {
    await h?.close();
    await strict?.close();
  });

  it('needs a TTL from 1 to 21600 seconds, else 400', async () => {
    for (const ttl of ['0', '21601', '-1', 'abc', '1.5', '', ' 99999999 ']) {
      expect((await token('169.254.30.1', ttl)).status, ttl).toBe(400);
    }
    const missing = await h.fromAddress('169.254.30.1', '/latest/api/token', { method: 'PUT' });
    expect(missing.status).toBe(400);
    const ok = await token('169.254.30.1', '21600');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-aws-ec2-metadata-token-ttl-seconds')).toBe('21600');
    expect((await token('169.254.30.1', '1')).status).toBe(200);
  });

  it('refuses a token PUT that carries X-Forwarded-For, and a GET of the token path', async () => {
    expect((await token('169.254.30.1', '60', h, { 'X-Forwarded-For': '169.254.30.1' })).status).toBe(403);
    expect((await h.fromAddress('169.254.30.1', '/latest/api/token')).status).toBe(405);
  });

  it('accepts a valid token, and answers 401 to a forged, foreign or expired one', async () => {
    const valid = await (await token('169.254.30.1', '60')).text();
    const get = (address: string, value: string) =>
      h.fromAddress(address, '/latest/meta-data/instance-id', {
        headers: { 'X-aws-ec2-metadata-token': value },
      });
    expect(await (await get('169.254.30.1', valid)).text()).toBe('v2-a');
    expect((await get('169.254.30.2', valid)).status).toBe(401);
    const [v, expiry, mac] = valid.split('.');
    expect((await get('169.254.30.1', `${v}.${Number(expiry) + 3600}.${mac}`)).status).toBe(401);
    expect((await get('169.254.30.1', `${v}.${expiry}.${'A'.repeat(43)}`)).status).toBe(401);
    expect((await get('169.254.30.1', 'garbage')).status).toBe(401);
    expect((await get('169.254.30.1', '')).status).toBe(401);
    h.setNow(new Date('2026-06-01T00:01:01Z'));
    try {
      expect((await get('169.254.30.1', valid)).status).toBe(401);
    } finally {
      h.setNow(new Date('2026-06-01T00:00:00Z'));
    }
  });

  it('serves GETs without a token unless metadata.requireImdsV2 is on', async () => {
    expect((await h.fromAddress('169.254.30.1', '/latest/user-data')).status).toBe(200);
    expect((await strict.fromAddress('169.254.30.1', '/latest/user-data')).status).toBe(401);
    const session = await (await token('169.254.30.1', '60', strict)).text();
    const withToken = await strict.fromAddress('169.254.30.1', '/latest/user-data', {
      headers: { 'X-aws-ec2-metadata-token': session },
    });
    expect(withToken.status).toBe(200);
    // No base config in this harness: the user's bytes are served as they are.
    expect(JSON.parse(await withToken.text())).toEqual(userIgnition('a'));
  });
});

describe('proxied metadata routes in the API (signed X-Instance-ID)', () => {
  let h: MetadataHarness;
  let off: MetadataHarness;

  beforeAll(async () => {
    h = await metadataHarness({ proxySecrets: [secret, oldSecret] });
    off = await metadataHarness();
    for (const target of [h, off]) {
      await target.put('vm-1', { ignition: userIgnition('vm-1'), ips: ['10.0.0.1'], hostname: 'one' });
      await target.put('vm-2', { ignition: userIgnition('vm-2'), ips: ['10.0.0.2'], hostname: 'two' });
    }
  });

  afterAll(async () => {
    await h?.close();
    await off?.close();
  });

  it('serves the instance the proxy vouches for, with either current secret', async () => {
    const response = await h.api.request('/v1/metadata/openstack/latest/user_data', {
      headers: signed('vm-1'),
    });
    expect(response.status).toBe(200);
    expect(mergedSources(await response.text())[1]).toEqual(userIgnition('vm-1'));
    const old = await h.api.request('/v1/metadata/latest/meta-data/hostname', {
      headers: signed('vm-2', oldSecret),
    });
    expect(await old.text()).toBe('two');
  });

  it('refuses unsigned, wrongly signed and re-targeted requests with 403, never another instance data', async () => {
    const cases: Record<string, string>[] = [
      { 'X-Instance-ID': 'vm-1' },
      {
        'X-Instance-ID': 'vm-1',
        'X-Instance-ID-Signature': signInstanceId('wrong-secret-0123456789', 'vm-1'),
      },
      { 'X-Instance-ID': 'vm-1', 'X-Instance-ID-Signature': signInstanceId(secret, 'vm-2') },
      { 'X-Instance-ID': 'vm-1', 'X-Instance-ID-Signature': signAddress(secret, 'vm-1') },
      { 'X-Instance-ID': 'vm-1', 'X-Instance-ID-Signature': signInstanceId(secret, 'vm-1').slice(0, 63) },
      { 'X-Instance-ID': 'vm-1 ', 'X-Instance-ID-Signature': signInstanceId(secret, 'vm-1 ') },
      { 'X-Forwarded-For': '10.0.0.1' },
      {},
    ];
    for (const headers of cases) {
      const response = await h.api.request('/v1/metadata/openstack/latest/user_data', { headers });
      expect(response.status, JSON.stringify(headers)).toBe(403);
      expect(await response.text()).not.toMatch(/vm-1|storage/);
    }
  });

  it('ignores X-Forwarded-For when the signature is right', async () => {
    const response = await h.api.request('/v1/metadata/latest/meta-data/instance-id', {
      headers: { ...signed('vm-2'), 'X-Forwarded-For': '10.0.0.1' },
    });
    expect(await response.text()).toBe('vm-2');
  });

  it('audits proxied fetches as family "proxy"', async () => {
    await h.api.request('/v1/metadata/latest/user-data', { headers: signed('vm-1') });
    await h.instances.flush();
    const { audit } = await (await h.admin('/v1/instances/vm-1')).json();
    expect(audit).toContainEqual(
      expect.objectContaining({ family: 'proxy', route: 'ignition', path: '/latest/user-data' }),
    );
  });

  it('answers the address lookup only with a valid address signature', async () => {
    const lookup = (address: string, signature: string | undefined, query = address) =>
      h.api.request(`/v1/metadata/instance-id?address=${encodeURIComponent(query)}`, {
        headers: {
          'X-Instance-Address': address,
          ...(signature === undefined ? {} : { 'X-Instance-Address-Signature': signature }),
        },
      });
    const found = await lookup('10.0.0.2', signAddress(secret, '10.0.0.2'));
    expect(found.status).toBe(200);
    expect(await found.json()).toEqual({ instanceId: 'vm-2' });
    const absent = await lookup('10.0.0.9', signAddress(oldSecret, '10.0.0.9'));
    expect(absent.status).toBe(404);
    expect(await absent.json()).toEqual({
      error: { code: 'not-found', message: 'no instance holds this address' },
    });
    expect((await lookup('10.0.0.2', undefined)).status).toBe(403);
    expect((await lookup('10.0.0.2', signInstanceId(secret, '10.0.0.2'))).status).toBe(403);
    expect((await lookup('10.0.0.2', signAddress('wrong-secret-0123456789', '10.0.0.2'))).status).toBe(403);
    expect((await lookup('10.0.0.2', signAddress(secret, '10.0.0.2'), '10.0.0.1')).status).toBe(400);
    expect((await lookup('not-an-ip', signAddress(secret, 'not-an-ip'))).status).toBe(400);
  });

  it('answers 404 on every proxied route when no secret is configured', async () => {
    const signedHeaders = signed('vm-1');
    for (const path of [
      '/v1/metadata/openstack/latest/user_data',
      '/v1/metadata/latest/meta-data/hostname',
      '/v1/metadata/instance-id?address=10.0.0.1',
    ]) {
      const response = await off.api.request(path, {
        headers: {
          ...signedHeaders,
          'X-Instance-Address': '10.0.0.1',
          'X-Instance-Address-Signature': signAddress(secret, '10.0.0.1'),
        },
      });
      expect(response.status, path).toBe(404);
    }
  });

  it('issues IMDSv2 tokens any process with the same secret honours (Lambda sandboxes)', async () => {
    const other = await metadataHarness({ proxySecrets: [secret] });
    try {
      await other.put('vm-1', { ignition: userIgnition('vm-1'), ips: ['10.0.0.1'] });
      const session = await (
        await h.api.request('/v1/metadata/latest/api/token', {
          method: 'PUT',
          headers: { ...signed('vm-1'), 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
        })
      ).text();
      const get = (target: MetadataHarness, id: string) =>
        target.api.request('/v1/metadata/latest/meta-data/instance-id', {
          headers: { ...signed(id), 'X-aws-ec2-metadata-token': session },
        });
      expect((await get(other, 'vm-1')).status).toBe(200);
      expect((await get(h, 'vm-2')).status).toBe(401);
    } finally {
      await other.close();
    }
  });

  it('serves the proxied routes through the Lambda handler (API Gateway payload v2)', async () => {
    const serve = handle(h.api);
    const event = (path: string, headers: Record<string, string>): LambdaEvent =>
      ({
        version: '2.0',
        routeKey: '$default',
        rawPath: path,
        rawQueryString: '',
        headers: {
          host: 'api.example',
          'user-agent': 'metadata-proxy',
          ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
        },
        isBase64Encoded: false,
        requestContext: {
          accountId: '123456789012',
          apiId: 'api',
          domainName: 'api.example',
          domainPrefix: 'api',
          http: {
            method: 'GET',
            path,
            protocol: 'HTTP/1.1',
            sourceIp: '198.51.100.7',
            userAgent: 'metadata-proxy',
          },
          requestId: 'r',
          routeKey: '$default',
          stage: '$default',
          time: '',
          timeEpoch: 0,
        },
      }) as unknown as LambdaEvent;
    const ok = await serve(event('/v1/metadata/latest/meta-data/hostname', signed('vm-1')));
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('one');
    const refused = await serve(event('/v1/metadata/latest/meta-data/hostname', { 'X-Instance-ID': 'vm-1' }));
    expect(refused.statusCode).toBe(403);
  });
});

describe('store outage', () => {
  it('answers 503 with Retry-After on the listener and the proxied routes', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const down = makeAwsClients({ dynamodb: `http://127.0.0.1:${port}` });
    const instances = createDynamoInstanceRepository(down.doc, {
      table: 'cldist-ledger',
      onAuditError: () => undefined,
    });
    const h = await metadataHarness({ instances, proxySecrets: [secret] });
    try {
      for (const response of [
        await h.fromAddress('169.254.10.7', '/openstack/latest/user_data'),
        await h.fromAddress('169.254.10.7', '/latest/meta-data/hostname'),
        await h.api.request('/v1/metadata/openstack/latest/user_data', { headers: signed('vm-1') }),
        await h.api.request('/v1/metadata/instance-id?address=10.0.0.1', {
          headers: {
            'X-Instance-Address': '10.0.0.1',
            'X-Instance-Address-Signature': signAddress(secret, '10.0.0.1'),
          },
        }),
      ]) {
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('5');
      }
    } finally {
      await h.close();
    }
  });
});
