import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsClientConfig } from './aws-client-config.ts';

/** Where the AWS clients point. Absent endpoints mean the real AWS service of the region. */
export interface AwsEndpoints {
  region?: string;
  s3?: string;
  sqs?: string;
  sns?: string;
  dynamodb?: string;
}

export interface AwsClients {
  s3: S3Client;
  sqs: SQSClient;
  sns: SNSClient;
  dynamodb: DynamoDBClient;
  doc: DynamoDBDocumentClient;
}

/**
 * One place builds every client, so the emulator settings (path-style S3, checksums only when required,
 * dummy credentials) cannot drift between the local runner, the tests and the benchmarks.
 */
export function makeAwsClients(endpoints: AwsEndpoints = {}): AwsClients {
  const base = (endpoint: string | undefined) => awsClientConfig(endpoint, endpoints.region);
  const s3 = new S3Client({
    ...base(endpoints.s3),
    ...(endpoints.s3 === undefined
      ? {}
      : {
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const,
        }),
  });
  const dynamodb = new DynamoDBClient(base(endpoints.dynamodb));
  return {
    s3,
    sqs: new SQSClient(base(endpoints.sqs)),
    sns: new SNSClient(base(endpoints.sns)),
    dynamodb,
    doc: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
  };
}
