import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { handle, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import { ConfigError, describeError } from '../../shared/errors.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import {
  createSecretsManagerProxySecrets,
  proxySecretMaxStaleMs,
  proxySecretTtlMs,
} from '../../shared/metadata/proxy-secrets-manager.ts';
import { parseRuntimeEnv } from '../../shared/runtime-env.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import { createApiApp } from './app.ts';

const { config, resources } = parseRuntimeEnv(process.env);
if (resources.configBucket === undefined) {
  throw new ConfigError('CLDIST_RESOURCES.configBucket is not set; the API stores config bodies there');
}
// Only the two clients this function uses (not makeAwsClients, which builds all four): SNS and SQS would
// add about 80 kB and their load time to every cold start. On AWS no emulator endpoints apply.
const doc = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
const instances = createDynamoInstanceRepository(doc, { table: resources.tableName });
const bodies = createS3Store(new S3Client({}), {
  bucket: resources.configBucket,
  sse: resources.configKmsKeyId === undefined ? 'AES256' : { kmsKeyId: resources.configKmsKeyId },
});
// The metadata proxies' secret: read lazily (the first proxied request pays for it, no other route does),
// then reused for the TTL, so a rotation reaches warm functions without a redeploy.
const proxySecrets =
  resources.metadataProxySecretArn === undefined
    ? undefined
    : createSecretsManagerProxySecrets({
        client: new SecretsManagerClient({}),
        secretId: resources.metadataProxySecretArn,
        ttlMs: proxySecretTtlMs,
        maxStaleMs: proxySecretMaxStaleMs,
        onStale: (error) =>
          process.stderr.write(
            `cldist api: metadata proxy secret refresh failed, using the last read: ${describeError(error)}\n`,
          ),
      });
const app = createApiApp(
  {
    instances,
    bodies,
    clock: () => new Date(),
    adminAuth: { kind: 'iam' },
    ...(proxySecrets === undefined ? {} : { proxySecrets }),
  },
  config,
);
const serve = handle(app);

/**
 * API Gateway HTTP API (payload v2). Audit entries are flushed before returning: a frozen Lambda sandbox
 * runs no timers, so anything left queued could wait indefinitely.
 */
export async function handler(event: LambdaEvent, context: LambdaContext) {
  try {
    return await serve(event, context);
  } finally {
    await instances.flush().catch((error: unknown) => {
      process.stderr.write(`cldist api: audit flush failed: ${describeError(error)}\n`);
    });
  }
}
