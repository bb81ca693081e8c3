import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { handle, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import { createApiApp } from '../../shared/api/app.ts';
import { createDynamoBootStore } from '../../shared/boot/store.ts';
import { ConfigError, describeError } from '../../shared/errors.ts';
import {
  type BodySweepReport,
  type configBodySweepEvent,
  sweepConfigBodies,
} from '../../shared/instances/body-sweep.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { createDynamoLedger } from '../../shared/ledger/ledger.ts';
import type { MirrorJob } from '../../shared/messages.ts';
import {
  createSecretsManagerProxySecrets,
  proxySecretMaxStaleMs,
  proxySecretTtlMs,
} from '../../shared/metadata/proxy-secrets-manager.ts';
import type { JobQueue } from '../../shared/mirror/deps.ts';
import { parseRuntimeEnv } from '../../shared/runtime-env.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import { metricNames, metricNamespace, serviceNames } from '../../shared/telemetry-names.ts';
import { createFleetRecording, fleetLedgerFor } from '../../shared/update/fleet-runtime.ts';
import { createUpdateService } from '../../shared/update/wiring.ts';

const { config, resources } = parseRuntimeEnv(process.env);
if (resources.configBucket === undefined) {
  throw new ConfigError('CLDIST_RESOURCES.configBucket is not set; the API stores config bodies there');
}
// Only the two clients this function uses (not makeAwsClients, which builds all four): SNS and SQS would
// add about 80 kB and their load time to every cold start. On AWS no emulator endpoints apply.
const doc = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
const instances = createDynamoInstanceRepository(doc, {
  table: resources.tableName,
  auditRetentionDays: config.api.auditRetentionDays,
  // DynamoDB's TTL expires audit items here; the day markers are for the single-machine sweep.
  auditDayMarkers: false,
});
const bodies = createS3Store(new S3Client({}), {
  bucket: resources.configBucket,
  sse: resources.configKmsKeyId === undefined ? 'AES256' : { kmsKeyId: resources.configKmsKeyId },
});
const ledger = createDynamoLedger(doc, resources.tableName);
// The release admin routes send jobs; SQS is loaded on the first retry, not on every cold start.
const jobsQueueUrl = resources.jobsQueueUrl;
const releases =
  jobsQueueUrl === undefined
    ? undefined
    : {
        ledger,
        jobs: {
          async sendJobs(jobs: MirrorJob[]) {
            const [{ SQSClient }, { createSqsJobQueue }] = await Promise.all([
              import('@aws-sdk/client-sqs'),
              import('../../shared/mirror/deps.ts'),
            ]);
            sqs ??= createSqsJobQueue(new SQSClient({}), jobsQueueUrl);
            await sqs.sendJobs(jobs);
          },
        },
      };
let sqs: JobQueue | undefined;
// Check-ins wait in memory only until this invocation returns (flushed below), never across a freeze.
const fleet = createFleetRecording(fleetLedgerFor(doc, resources.tableName, config), config, {
  clock: () => new Date(),
  onError: (error, dropped) =>
    process.stderr.write(
      `${JSON.stringify({ level: 'warn', event: 'fleet.flush_failed', dropped, cause: describeError(error) })}\n`,
    ),
});
// Omaha answers name payloads by the mirror's public URL; a private bucket without CloudFront has none.
const updates =
  resources.mirrorPublicUrl === undefined
    ? undefined
    : createUpdateService(
        {
          groups: ledger,
          current: ledger,
          payloads: ledger,
          clock: () => new Date(),
          recorder: fleet.recorder,
        },
        {
          mirrorBaseUrl: resources.mirrorPublicUrl,
          sources: config.sources,
        },
      );
const metrics = new Metrics({ namespace: metricNamespace, serviceName: serviceNames.api });
let metricsStored = false;
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
    ...(releases === undefined ? {} : { releases }),
    // Refused fetches are counted, never stored per id: anyone can send them.
    countRefused: (outcome) => {
      metrics.addMetric(metricNames.fetchesRefused, MetricUnit.Count, 1);
      if (outcome === 'unknown-instance')
        metrics.addMetric(metricNames.unknownInstanceFetches, MetricUnit.Count, 1);
      metricsStored = true;
    },
    ...(proxySecrets === undefined ? {} : { proxySecrets }),
    // Profiles, selectors and boot tokens live in the ledger table; the mirror's facts are its releases.
    boot: {
      store: createDynamoBootStore(doc, resources.tableName),
      releases: releases?.ledger ?? createDynamoLedger(doc, resources.tableName),
    },
    fleet: fleet.api,
    ...(updates === undefined ? {} : { updates }),
  },
  config,
);
const serve = handle(app);

/** The scheduled input of the daily body sweep (an EventBridge rule with a constant input). */
export const sweepEvent = { cldist: 'sweep-config-bodies' } as const;

function isSweepEvent(event: unknown): boolean {
  return (
    typeof event === 'object' &&
    event !== null &&
    (event as { cldist?: unknown }).cldist === sweepEvent.cldist
  );
}

/**
 * API Gateway HTTP API (payload v2), or the daily sweep of config bodies no record points at. Audit
 * entries and fleet check-ins are flushed before returning: a frozen Lambda sandbox runs no timers, so anything left queued
 * could wait indefinitely.
 */
export async function handler(
  event: LambdaEvent | typeof configBodySweepEvent,
  context: LambdaContext,
): Promise<Awaited<ReturnType<typeof serve>> | BodySweepReport> {
  if (isSweepEvent(event)) {
    // The API function's timeout is short; a large fleet is covered over several daily runs.
    const report = await sweepConfigBodies(
      { instances, bodies, clock: () => new Date() },
      { shouldStop: () => context.getRemainingTimeInMillis() < 3000 },
    );
    process.stdout.write(`${JSON.stringify({ event: 'config_bodies.swept', ...report })}\n`);
    return report;
  }
  try {
    return await serve(event as LambdaEvent, context);
  } finally {
    await Promise.all([
      instances.flush().catch((error: unknown) => {
        process.stderr.write(`cldist api: audit flush failed: ${describeError(error)}\n`);
      }),
      fleet.recorder.flush().catch((error: unknown) => {
        process.stderr.write(`cldist api: fleet flush failed: ${describeError(error)}\n`);
      }),
    ]);
    if (metricsStored) {
      metricsStored = false;
      metrics.publishStoredMetrics();
    }
  }
}
