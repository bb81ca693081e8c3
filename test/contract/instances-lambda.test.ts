import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../functions/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import { emulatorClients, freshBucket, freshTable } from '../support/emulators.ts';

const operatorIam = {
  accessKey: 'AKIAIOSFODNN7EXAMPLE',
  accountId: '123456789012',
  callerId: 'AIDAJQABLZS4A3QDU576Q',
  cognitoIdentity: null,
  principalOrgId: null,
  userArn: 'arn:aws:iam::123456789012:user/operator',
  userId: 'AIDAJQABLZS4A3QDU576Q',
};

/**
 * An API Gateway HTTP API (payload format 2.0) event. `iam` is what an IAM-authorised route adds: the caller
 * the authorizer checked; the instance routes have no authorizer.
 */
function eventV2(
  method: string,
  path: string,
  options: {
    query?: string;
    headers?: Record<string, string>;
    body?: string;
    base64?: boolean;
    iam?: boolean;
  } = {},
): LambdaEvent {
  const body =
    options.body === undefined
      ? null
      : options.base64
        ? Buffer.from(options.body).toString('base64')
        : options.body;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: {
      host: 'abc123.execute-api.eu-west-1.amazonaws.com',
      'user-agent': 'Ignition/lambda',
      ...options.headers,
    },
    body,
    isBase64Encoded: options.base64 ?? false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      authentication: null,
      authorizer: options.iam === true ? { iam: operatorIam } : {},
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '198.51.100.7', userAgent: 'Ignition/lambda' },
      requestId: 'req-1',
      routeKey: '$default',
      stage: '$default',
      time: '01/Jan/2026:00:00:00 +0000',
      timeEpoch: 1_767_225_600_000,
    },
  };
}

describe('the API app behind API Gateway HTTP API payload v2 (hono/aws-lambda)', () => {
  let instances: InstanceRepository;
  let serve: ReturnType<typeof handle>;

  beforeAll(async () => {
    const clients = emulatorClients();
    const table = await freshTable(clients);
    await waitUntilTableExists(
      { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
      { TableName: table },
    );
    instances = createDynamoInstanceRepository(clients.doc, { table });
    const bodies = createS3Store(clients.s3, {
      bucket: await freshBucket(clients, 'configs'),
      sse: 'AES256',
    });
    const app = createApiApp(
      { instances, bodies, clock: () => new Date(), adminAuth: { kind: 'iam' } },
      parseConfig({}),
    );
    serve = handle(app);
  });

  afterAll(async () => {
    await instances?.close();
  });

  it('stores a config from a base64 body, serves it, and audits the API Gateway source IP', async () => {
    const put = await serve(
      eventV2('PUT', '/v1/instances/lambda-1', {
        iam: true,
        body: JSON.stringify({ ignition: { ignition: { version: '3.5.0' } } }),
        base64: true,
      }),
    );
    expect(put.statusCode).toBe(201);
    const { token, ignitionUrl } = JSON.parse(put.body) as { token: string; ignitionUrl: string };
    expect(ignitionUrl).toBe(
      `https://abc123.execute-api.eu-west-1.amazonaws.com/v1/instances/lambda-1/ignition?token=${token}`,
    );

    const got = await serve(eventV2('GET', '/v1/instances/lambda-1/ignition', { query: `token=${token}` }));
    expect(got.statusCode).toBe(200);
    expect(got.headers).toMatchObject({
      'content-type': 'application/vnd.coreos.ignition+json',
      'cache-control': 'no-store',
    });
    expect(JSON.parse(got.isBase64Encoded ? Buffer.from(got.body, 'base64').toString() : got.body)).toEqual({
      ignition: { version: '3.5.0' },
    });

    await instances.flush();
    const shown = await serve(eventV2('GET', '/v1/instances/lambda-1', { iam: true }));
    expect(JSON.parse(shown.body).audit).toEqual([
      expect.objectContaining({ sourceIp: '198.51.100.7', userAgent: 'Ignition/lambda', outcome: 'served' }),
    ]);
  });

  it('answers a wrong token with the same 404 as anywhere else', async () => {
    const got = await serve(
      eventV2('GET', '/v1/instances/lambda-1/ignition', { headers: { authorization: 'Bearer x' } }),
    );
    expect(got.statusCode).toBe(404);
    expect(JSON.parse(got.body)).toEqual({ error: { code: 'not-found', message: 'not found' } });
  });
});
