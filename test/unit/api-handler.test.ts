import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { LambdaContext } from 'hono/aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configBodySweepEvent } from '../../shared/instances/body-sweep.ts';
import { ledgerItems } from '../../shared/ledger/table.ts';

describe('the API Lambda handler at cold start', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('fails at once, naming the variable, when the deployment did not set it', async () => {
    vi.stubEnv('CLDIST_CONFIG', '');
    await expect(import('../../functions/api/handler.ts')).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringMatching(/CLDIST_CONFIG is not set/),
    });
  });

  it('fails at once when the config bucket is missing', async () => {
    vi.stubEnv('CLDIST_CONFIG', '{}');
    vi.stubEnv('CLDIST_RESOURCES', JSON.stringify({ tableName: 'cldist-ledger' }));
    await expect(import('../../functions/api/handler.ts')).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringMatching(/configBucket/),
    });
  });

  it('loads with a complete environment and exports the handler', async () => {
    vi.stubEnv('CLDIST_CONFIG', '{}');
    vi.stubEnv(
      'CLDIST_RESOURCES',
      JSON.stringify({ tableName: 'cldist-ledger', configBucket: 'cldist-configs' }),
    );
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    const module = await import('../../functions/api/handler.ts');
    expect(module.handler).toBeTypeOf('function');
  });
});

describe('the API Lambda handler on its daily schedule', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('sweeps config bodies no record points at, and only those', async () => {
    vi.stubEnv('CLDIST_CONFIG', '{}');
    vi.stubEnv(
      'CLDIST_RESOURCES',
      JSON.stringify({ tableName: 'cldist-ledger', configBucket: 'cldist-configs' }),
    );
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    const s3 = mockClient(S3Client);
    const ddb = mockClient(DynamoDBDocumentClient);
    try {
      s3.on(ListObjectsV2Command).resolves({
        Contents: [{ Key: 'instances/a/current.ign' }, { Key: 'instances/a/replaced.ign' }],
        IsTruncated: false,
      });
      s3.on(HeadObjectCommand).resolves({
        ContentLength: 2,
        ETag: '"e"',
        LastModified: new Date(Date.now() - 86_400_000),
      });
      s3.on(DeleteObjectCommand).resolves({});
      ddb.on(GetCommand).resolves({
        Item: {
          ...ledgerItems.instance('a'),
          id: 'a',
          bodyKey: 'instances/a/current.ign',
          tokenHash: 'h',
        },
      });
      const { handler } = await import('../../functions/api/handler.ts');
      const context = { getRemainingTimeInMillis: () => 60_000 } as unknown as LambdaContext;
      const report = await handler(configBodySweepEvent, context);
      expect(report).toMatchObject({ instances: 1, removed: 1, skipped: 0 });
      const deleted = s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.Key);
      expect(deleted).toEqual(['instances/a/replaced.ign']);
    } finally {
      s3.restore();
      ddb.restore();
    }
  });
});
