import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerItems } from '../../shared/ledger/table.ts';
import { omahaCheck } from '../support/update-fixtures.ts';
import type { Deployment } from './harness/deployment.ts';
import { deployStack } from './harness/fixture.ts';
import { HttpApi, operatorCaller } from './harness/http-api.ts';

const ignition = {
  ignition: { version: '3.4.0' },
  storage: { files: [{ path: '/etc/hostname', contents: { source: 'data:,deployed' } }] },
};

/** The API bundle behind the HTTP API the template declares, driven with payload 2.0 events. */
describe('the deployed API', () => {
  let deployment: Deployment;
  let api: HttpApi;

  beforeAll(async () => {
    deployment = await deployStack();
    api = new HttpApi(deployment);
  });
  afterAll(() => deployment?.close());

  it('answers 404 for an unknown instance, from the function', async () => {
    const res = await api.request({ method: 'GET', path: '/v1/instances/no-such-vm/ignition?token=abc' });
    expect(res).toMatchObject({ status: 404, answeredBy: 'function' });
    expect(res.json()).toEqual({ error: { code: 'not-found', message: 'not found' } });
  });

  it('stores a config on an IAM-authorised PUT (201) and serves it to the instance with its token (200)', async () => {
    const put = await api.request({
      method: 'PUT',
      path: '/v1/instances/vm-1',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ignition }),
      iam: operatorCaller,
    });
    expect(put.status, put.body).toBe(201);
    const created = put.json<{ token: string; ignitionUrl: string }>();
    const url = new URL(created.ignitionUrl);
    // The config URL is built from the API's own endpoint, as the template resolves it.
    expect(url.origin).toBe(deployment.attribute(deployment.logicalId('Api'), 'ApiEndpoint'));

    const fetched = await api.request({
      method: 'GET',
      path: `${url.pathname}${url.search}`,
      headers: { accept: 'application/vnd.coreos.ignition+json;version=3.4.0, */*;q=0.1' },
    });
    expect(fetched.status, fetched.body).toBe(200);
    expect(fetched.json()).toMatchObject(ignition);

    const wrongToken = await api.request({ method: 'GET', path: `${url.pathname}?token=${'0'.repeat(43)}` });
    expect(wrongToken.status).toBe(404);
  });

  it('keeps a small config in the (CMK-encrypted) ledger item and a large one in the config bucket', async () => {
    const bucket = deployment.ref(deployment.logicalId('ConfigBucket'));
    const table = deployment.ref(deployment.logicalId('Ledger'));
    const large = {
      ignition: { version: '3.4.0' },
      storage: { files: [{ path: '/etc/large', contents: { source: `data:,${'x'.repeat(40 * 1024)}` } }] },
    };
    for (const [id, config] of [
      ['vm-small', ignition],
      ['vm-large', large],
    ] as const) {
      const put = await api.request({
        method: 'PUT',
        path: `/v1/instances/${id}`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ignition: config }),
        iam: operatorCaller,
      });
      expect(put.status, put.body).toBe(201);
      const url = new URL(put.json<{ ignitionUrl: string }>().ignitionUrl);
      const fetched = await api.request({ method: 'GET', path: `${url.pathname}${url.search}` });
      expect(fetched.status, fetched.body).toBe(200);
      expect(fetched.json()).toMatchObject(config);
    }
    const listed = async (id: string) =>
      (
        await deployment.clients.s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: `instances/${id}/` }),
        )
      ).Contents ?? [];
    const item = async (id: string) =>
      (await deployment.clients.doc.send(new GetCommand({ TableName: table, Key: ledgerItems.instance(id) })))
        .Item;
    expect(await listed('vm-small')).toEqual([]);
    expect((await item('vm-small'))?.bodyZ).toBeInstanceOf(Uint8Array);
    expect(await listed('vm-large')).toHaveLength(1);
    expect((await item('vm-large'))?.bodyZ).toBeUndefined();
  });

  it('boots a registered machine with a script naming the CloudFront mirror, and an unknown one with a retry script', async () => {
    const unknown = await api.request({
      method: 'GET',
      path: '/v1/boot/ipxe?mac=52-54-00-00-00-99&uuid=&serial=&hostname=',
    });
    expect(unknown).toMatchObject({ status: 200, answeredBy: 'function' });
    expect(unknown.body).toContain('no instance matches this machine (mac=52-54-00-00-00-99)');
    const profile = await api.request({
      method: 'PUT',
      path: '/v1/boot/profiles/ram',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'stable' }),
      iam: operatorCaller,
    });
    expect(profile.status, profile.body).toBe(201);
    const instance = await api.request({
      method: 'PUT',
      path: '/v1/instances/metal-1',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ignition }),
      iam: operatorCaller,
    });
    expect(instance.status, instance.body).toBe(201);
    const selection = await api.request({
      method: 'PUT',
      path: '/v1/instances/metal-1/boot',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mac: '52:54:00:00:00:01', profile: 'ram' }),
      iam: operatorCaller,
    });
    expect(selection.status, selection.body).toBe(200);
    // Nothing is mirrored on the stand-ins, so the machine is told so and asks again.
    const waiting = await api.request({ method: 'GET', path: '/v1/boot/ipxe?mac=52-54-00-00-00-01' });
    expect(waiting).toMatchObject({ status: 200, answeredBy: 'function' });
    expect(waiting.body).toContain('no stable/amd64-usr release is mirrored and verified yet');
    const unsigned = await api.request({ method: 'GET', path: '/v1/boot/profiles' });
    expect(unsigned.status).toBe(403);
  });

  it('refuses unsigned admin requests at the gateway, as the IAM authorizer does', async () => {
    for (const method of ['PUT', 'GET', 'DELETE']) {
      const res = await api.request({
        method,
        path: '/v1/instances/vm-1',
        body: JSON.stringify({ ignition }),
      });
      expect(res).toMatchObject({ status: 403, answeredBy: 'gateway' });
      expect(res.json()).toEqual({ message: 'Forbidden' });
    }
  });

  it('registers JSON lines through the IAM-authorised bulk route, lists them, and refuses them unsigned', async () => {
    const lines = ['bulk-a', 'bulk-b'].map((id) => JSON.stringify({ id, ignition })).join('\n');
    const unsigned = await api.request({ method: 'POST', path: '/v1/instances', body: lines });
    expect(unsigned).toMatchObject({ status: 403, answeredBy: 'gateway' });
    const bulk = await api.request({
      method: 'POST',
      path: '/v1/instances',
      headers: { 'content-type': 'application/x-ndjson' },
      body: lines,
      iam: operatorCaller,
    });
    expect(bulk.status, bulk.body).toBe(200);
    const answers = bulk.body
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { id?: string; token?: string; done?: boolean });
    expect(answers.map((a) => a.id ?? a.done)).toEqual(['bulk-a', 'bulk-b', true]);
    const listed = await api.request({
      method: 'GET',
      path: '/v1/instances?prefix=bulk-',
      iam: operatorCaller,
    });
    expect(listed.json<{ instances: { id: string }[] }>().instances.map((i) => i.id)).toEqual([
      'bulk-a',
      'bulk-b',
    ]);
  });

  it('answers update_engine without credentials, and keeps the update groups for IAM callers', async () => {
    const check = (track: string) =>
      api.request({
        method: 'POST',
        path: '/v1/update',
        headers: { 'content-type': 'text/xml' },
        body: omahaCheck({ track }),
      });
    const stable = await check('stable');
    expect(stable).toMatchObject({ status: 200, answeredBy: 'function' });
    expect(stable.headers['content-type']).toBe('application/xml; charset=utf-8');
    // Nothing is mirrored in this deployment, so the channel's track is told there is nothing new.
    expect(stable.body).toMatch(/<updatecheck status="noupdate"\/>/);
    expect((await check('canary')).body).toMatch(/status="error-unknownApplicationOrGroup"/);

    const unsigned = await api.request({ method: 'GET', path: '/v1/update-groups' });
    expect(unsigned).toMatchObject({ status: 403, answeredBy: 'gateway' });
    const put = await api.request({
      method: 'PUT',
      path: '/v1/update-groups/canary',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'stable', rollout: { kind: 'percent', percent: 10 } }),
      iam: operatorCaller,
    });
    expect(put.status, put.body).toBe(201);
    expect((await check('canary')).body).toMatch(/<updatecheck status="noupdate"\/>/);
  });

  it('answers 404 from the gateway for a route the template does not declare', async () => {
    const res = await api.request({ method: 'POST', path: '/v1/instances/vm-1', iam: operatorCaller });
    expect(res).toMatchObject({ status: 404, answeredBy: 'gateway' });
  });

  it('refuses admin requests in the function too when a route is deployed without the IAM authorizer', async () => {
    const open = await deployStack({
      editTemplate: (template) => {
        const route = Object.values(template.Resources).find(
          (r) => r.Type === 'AWS::ApiGatewayV2::Route' && r.Properties?.RouteKey === 'PUT /v1/instances/{id}',
        );
        if (route?.Properties === undefined) throw new Error('no admin PUT route in the template');
        route.Properties.AuthorizationType = 'NONE';
      },
    });
    try {
      const res = await new HttpApi(open).request({
        method: 'PUT',
        path: '/v1/instances/vm-open',
        headers: { 'content-type': 'application/json', authorization: 'AWS4-HMAC-SHA256 Credential=forged' },
        body: JSON.stringify({ ignition }),
      });
      expect(res).toMatchObject({ status: 403, answeredBy: 'function' });
      expect(res.json()).toMatchObject({ error: { code: 'forbidden' } });
    } finally {
      await open.close();
    }
  });
});
